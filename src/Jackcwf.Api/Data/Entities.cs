using Microsoft.AspNetCore.Identity;

namespace Jackcwf.Api.Data;

public sealed class AppUser : IdentityUser<Guid>
{
    public DateTime CreatedAt { get; set; } = DateTime.UtcNow;
    public bool IsDisabled { get; set; }
    /// <summary>Monthly spending limit in US dollars; null uses the default for all users.</summary>
    public decimal? MonthlyBudgetUsd { get; set; }
}

public sealed class AppRole : IdentityRole<Guid>
{
    public const string Admin = "admin";
}

public sealed class Conversation
{
    public Guid Id { get; set; }
    public Guid UserId { get; set; }
    public string Title { get; set; } = "";
    public string Model { get; set; } = "";
    public string? SystemPrompt { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime UpdatedAt { get; set; }
    /// <summary>Pinned conversations come first in the list.</summary>
    public bool Pinned { get; set; }
    /// <summary>Archived conversations are left out of the list unless asked for (<c>?archived=true</c>).</summary>
    public bool Archived { get; set; }
    /// <summary>The caller's folder holding it, if any; deleting the folder sets it back to null.</summary>
    public Guid? FolderId { get; set; }
    public List<Message> Messages { get; set; } = [];
}

public static class MessageRoles
{
    public const string User = "user";
    public const string Assistant = "assistant";
}

public static class MessageStatuses
{
    public const string Streaming = "streaming";
    public const string Complete = "complete";
    public const string Stopped = "stopped";
    public const string Interrupted = "interrupted";
    public const string Failed = "failed";
}

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

/// <summary>A personal API key: only a SHA-256 hash is stored; the key itself is shown once.</summary>
public sealed class ApiKey
{
    public Guid Id { get; set; }
    public Guid UserId { get; set; }
    public string Name { get; set; } = "";
    /// <summary>The visible start of the key (<c>jk-abcd1234</c>), to recognise it in lists.</summary>
    public string Prefix { get; set; } = "";
    public string Hash { get; set; } = "";
    public DateTime CreatedAt { get; set; }
    public DateTime? LastUsedAt { get; set; }
}

/// <summary>One ledger line per generation: who, through which key, which model, tokens and cost.</summary>
public sealed class UsageRecord
{
    public Guid Id { get; set; }
    public Guid UserId { get; set; }
    public Guid? ApiKeyId { get; set; }
    public string Model { get; set; } = "";
    public string Source { get; set; } = "";
    public int InputTokens { get; set; }
    public int OutputTokens { get; set; }
    public decimal CostUsd { get; set; }
    public DateTime CreatedAt { get; set; }
    /// <summary>Answered from the response cache: no provider call, cost 0.</summary>
    public bool Cached { get; set; }
    /// <summary>For a cached answer, the tokens the original answer used (what the cache saved).</summary>
    public int TokensSaved { get; set; }
}

/// <summary>
/// Characters of message text a user stores, kept by database triggers on <c>messages</c> (insert,
/// update of the text, delete, cascades included), so every writer, old releases too, keeps it right
/// and the storage cap never has to add up a user's messages.
/// </summary>
public sealed class UserStorage
{
    public Guid UserId { get; set; }
    public long StoredChars { get; set; }
}
