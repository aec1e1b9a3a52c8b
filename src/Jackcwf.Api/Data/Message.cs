namespace Jackcwf.Api.Data;

public sealed class Message
{
    public Guid Id { get; set; }
    public Guid ConversationId { get; set; }
    /// <summary>Denormalised owner so every ownership check is one indexed lookup.</summary>
    public Guid UserId { get; set; }
    public Guid? ParentMessageId { get; set; }
    public string Role { get; set; } = MessageRoles.User;
    public string Content { get; set; } = "";
    public string Status { get; set; } = MessageStatuses.Complete;
    /// <summary>The model that answered (a fallback's when the requested one failed).</summary>
    public string? Model { get; set; }
    /// <summary>The model the user asked for, when another one answered.</summary>
    public string? RequestedModel { get; set; }
    public int? InputTokens { get; set; }
    public int? OutputTokens { get; set; }
    public decimal? CostUsd { get; set; }
    /// <summary>Problem type code when the generation failed or was interrupted.</summary>
    public string? ErrorCode { get; set; }
    public string? ErrorDetail { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime UpdatedAt { get; set; }
    public DateTime? CompletedAt { get; set; }
    /// <summary>Replica that runs the generation, and until when its lease holds.</summary>
    public string? OwnerInstance { get; set; }
    public DateTime? LeaseExpiresAt { get; set; }
    /// <summary>For an answer grounded in attached files: the excerpts it was given (JSON list of <c>SourceDto</c>).</summary>
    public string? Sources { get; set; }
}
