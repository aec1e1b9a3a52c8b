namespace Jackcwf.Api.Folders;

public sealed record FolderDto(Guid Id, string Name, int ConversationCount, DateTime CreatedAt, DateTime UpdatedAt);

public sealed record FolderList(IReadOnlyList<FolderDto> Items);

public sealed record FolderRequest(string? Name);
