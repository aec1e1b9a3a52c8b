namespace Jackcwf.Api.Data;

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
