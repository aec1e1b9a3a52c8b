using Jackcwf.Api.Configuration;

namespace Jackcwf.Api.Health;

public static class HealthExtensions
{
    /// <summary>The health monitor (ENABLE_MONITORING, MONITORING_INTERVAL_SECONDS) and its settings.</summary>
    public static IHostApplicationBuilder AddHealthMonitoring(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSettings<MonitoringOptions>(MonitoringOptions.Section);
        builder.Services.AddHostedService<HealthMonitor>();
        return builder;
    }
}
