namespace Jackcwf.Api.Prompts;

/// <summary>A text the user inserts into the composer by typing <c>/</c> and choosing it (or its command).</summary>
public sealed class SavedPrompt
{
    public Guid Id { get; set; }
    public Guid UserId { get; set; }
    public string Title { get; set; } = "";
    /// <summary>Optional short word typed after <c>/</c> (lower case, digits, '-' and '_'), unique per user.</summary>
    public string? Command { get; set; }
    public string Text { get; set; } = "";
    public DateTime CreatedAt { get; set; }
    public DateTime UpdatedAt { get; set; }
}
