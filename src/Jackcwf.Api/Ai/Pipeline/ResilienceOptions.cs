using System.ComponentModel.DataAnnotations;

namespace Jackcwf.Api.Ai.Pipeline;

/// <summary>Retries, circuit breakers and timeouts of provider calls (defaults in docs/configuration.md).</summary>
public sealed class ResilienceOptions
{
    public const string Section = "Resilience";
    public int MaxRetries { get; set; } = 2;
    [Range(0, 60_000, ErrorMessage = "Resilience:RetryBaseDelayMs must be a whole number between {1} and {2}.")]
    public int RetryBaseDelayMs { get; set; } = 500;
    /// <summary>A provider's Retry-After longer than this is not waited for.</summary>
    public int MaxRetryAfterSeconds { get; set; } = 10;
    public int FirstTokenTimeoutSeconds { get; set; } = 60;
    public int IdleTimeoutSeconds { get; set; } = 30;
    public double CircuitFailureRatio { get; set; } = 0.5;
    public int CircuitMinimumThroughput { get; set; } = 10;
    public int CircuitSamplingSeconds { get; set; } = 30;
    public int CircuitBreakSeconds { get; set; } = 30;
}
