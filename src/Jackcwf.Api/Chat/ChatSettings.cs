namespace Jackcwf.Api.Chat;

/// <summary>Tuning of the chat engine (appsettings <c>Chat</c> section; defaults suit production).</summary>
public sealed class ChatSettings
{
    public const string Section = "Chat";

    /// <summary>How often running text is written to the database (never per token).</summary>
    public int CheckpointIntervalMs { get; set; } = 500;

    /// <summary>A generation's lease; renewed at every checkpoint. Another replica may take over once it lapses.</summary>
    public int LeaseSeconds { get; set; } = 30;

    /// <summary>Comment lines keep idle SSE streams open through proxies.</summary>
    public int KeepAliveIntervalMs { get; set; } = 15_000;

    /// <summary>Idempotency keys are remembered at least this long.</summary>
    public int IdempotencyRetentionHours { get; set; } = 48;
}
