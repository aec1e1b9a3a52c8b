using System.ComponentModel.DataAnnotations;

namespace Jackcwf.Api.Chat;

/// <summary>Tuning of the chat engine (appsettings <c>Chat</c> section; defaults suit production).</summary>
public sealed class ChatSettings
{
    public const string Section = "Chat";

    /// <summary>How often running text is written to the database (never per token).</summary>
    [Range(10, 60_000, ErrorMessage = "Chat:CheckpointIntervalMs must be a whole number between {1} and {2}.")]
    public int CheckpointIntervalMs { get; set; } = 500;

    /// <summary>A generation's lease; renewed at every checkpoint. Another replica may take over once it lapses.</summary>
    [Range(2, 3600, ErrorMessage = "Chat:LeaseSeconds must be a whole number between {1} and {2}.")]
    public int LeaseSeconds { get; set; } = 30;

    /// <summary>Comment lines keep idle SSE streams open through proxies.</summary>
    [Range(100, 600_000, ErrorMessage = "Chat:KeepAliveIntervalMs must be a whole number between {1} and {2}.")]
    public int KeepAliveIntervalMs { get; set; } = 15_000;

    /// <summary>Idempotency keys are remembered at least this long.</summary>
    [Range(24, 87_600, ErrorMessage = "Chat:IdempotencyRetentionHours must be a whole number between {1} and {2}.")]
    public int IdempotencyRetentionHours { get; set; } = 48;

    /// <summary>
    /// How long a repeated JSON request (same Idempotency-Key) waits for an answer still running on
    /// another replica before it answers 503 <c>answer_pending</c> with the message id to resume.
    /// </summary>
    [Range(1, 3600, ErrorMessage = "Chat:ReplayWaitSeconds must be a whole number between {1} and {2}.")]
    public int ReplayWaitSeconds { get; set; } = 120;
}
