namespace Jackcwf.Api.Health;

public sealed class MonitoringOptions
{
    public const string Section = "Monitoring";
    public bool Enabled { get; set; } = true;
    public int IntervalSeconds { get; set; } = 10;
    public int HealthCheckTimeoutMs { get; set; } = 2000;
}
