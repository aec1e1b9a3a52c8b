namespace Jackcwf.Api.Limits;

public sealed class LimitsOptions
{
    public const string Section = "Limits";
    public int MaxMessageChars { get; set; } = 100_000;
    public int RequestsPerMinutePerUser { get; set; } = 300;
    public int RequestsPerMinutePerKey { get; set; } = 300;
    public int MaxConcurrentGenerationsPerUser { get; set; } = 4;
    /// <summary>Default monthly spending limit (US dollars) for users without their own; null means unlimited.</summary>
    public decimal? DefaultMonthlyBudgetUsd { get; set; }
    public int MaxOutputTokens { get; set; } = 4096;
    /// <summary>Messages (user and assistant, every branch) one conversation may hold.</summary>
    public int MaxMessagesPerConversation { get; set; } = 1000;
    /// <summary>Characters of message text one account may store across all its conversations.</summary>
    public long MaxStoredCharsPerUser { get; set; } = 50_000_000;
    /// <summary>At most this many earlier messages of the branch are sent to the model (newest first; the system prompt is always sent).</summary>
    public int ContextMaxMessages { get; set; } = 50;
    /// <summary>At most this many characters of earlier messages are sent to the model.</summary>
    public int ContextMaxChars { get; set; } = 200_000;
    /// <summary>Server-Sent Event streams (new answers and resumes) one account may hold open at once, across replicas.</summary>
    public int MaxConcurrentStreamsPerUser { get; set; } = 8;
    /// <summary>Search looks at the text of this many of the account's newest messages (titles: all conversations).</summary>
    public int SearchMaxMessages { get; set; } = 5000;
    /// <summary>Folders one account may have.</summary>
    public int MaxFoldersPerUser { get; set; } = 100;
    /// <summary>Saved prompts one account may keep.</summary>
    public int MaxSavedPromptsPerUser { get; set; } = 200;
}
