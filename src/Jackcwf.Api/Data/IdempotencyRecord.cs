namespace Jackcwf.Api.Data;

/// <summary>An <c>Idempotency-Key</c> the user sent, and what it produced.</summary>
public sealed class IdempotencyRecord
{
    public Guid UserId { get; set; }
    public string Key { get; set; } = "";
    public string RequestHash { get; set; } = "";
    public Guid ConversationId { get; set; }
    /// <summary>The route the key was used on (null: rows written before routes were recorded, all SendMessage).</summary>
    public string? Route { get; set; }
    public Guid UserMessageId { get; set; }
    public Guid AssistantMessageId { get; set; }
    public DateTime CreatedAt { get; set; }
}
