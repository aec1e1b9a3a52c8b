using System.ComponentModel.DataAnnotations;

namespace Jackcwf.ServiceDefaults;

/// <summary>
/// The drain sequence's timings (<see cref="ShutdownDrainExtensions.AddDrainOnShutdown"/>); they share
/// the <c>Server</c> section with the host's own listener settings.
/// </summary>
public sealed class ShutdownOptions
{
    public const string Section = "Server";

    /// <summary>How long a probed replica keeps serving after readiness turns 503 (SHUTDOWN_DRAIN_DELAY_SECONDS).</summary>
    [Range(0, 600, ErrorMessage = "Server:DrainDelaySeconds (SHUTDOWN_DRAIN_DELAY_SECONDS) must be a whole number between {1} and {2}.")]
    public int DrainDelaySeconds { get; set; } = 5;

    /// <summary>How long running work may take to finish once the listener closes (GRACEFUL_SHUTDOWN_TIMEOUT).</summary>
    [Range(0, 3600, ErrorMessage = "Server:GracefulShutdownTimeoutSeconds (GRACEFUL_SHUTDOWN_TIMEOUT) must be a whole number between {1} and {2}.")]
    public int GracefulShutdownTimeoutSeconds { get; set; } = 30;
}
