namespace Jackcwf.Api.Sharing;

/// <summary>What a share link shows: no ids, no email, nothing of the owner but the text.</summary>
public sealed record SharedConversation(string Title, DateTime SharedAt, IReadOnlyList<SharedMessage> Messages);

public sealed record SharedMessage(string Role, string Content, string? Model, DateTime CreatedAt);

/// <summary><c>messageId</c>: the last message of the branch to share; absent means the newest branch.</summary>
public sealed record CreateShareRequest(Guid? MessageId);

public sealed record ShareLinkDto(string Url, string Token, DateTime CreatedAt);

public sealed record ShareListItem(Guid ConversationId, string Title, string Url, string Token, DateTime CreatedAt);

public sealed record ShareList(IReadOnlyList<ShareListItem> Items);
