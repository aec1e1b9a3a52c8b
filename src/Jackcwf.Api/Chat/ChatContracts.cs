using Jackcwf.Api.Conversations;

namespace Jackcwf.Api.Chat;

/// <summary><c>fileIds</c>: files of the caller to attach to the conversation before this turn searches them.</summary>
public sealed record SendMessageRequest(string? Content, string? Model, OptionalGuid ParentMessageId, IReadOnlyList<Guid>? FileIds = null);

public sealed record SendMessageResponse(MessageDto UserMessage, MessageDto AssistantMessage);

/// <summary>The <c>data</c> of a <c>delta</c> event.</summary>
public sealed record DeltaPayload(string Text);

/// <summary>The <c>data</c> of the <c>start</c> event that follows <c>user</c> on a new answer's stream.</summary>
public sealed record StartPayload(Guid MessageId, Guid ConversationId);
