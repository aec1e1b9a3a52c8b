using Jackcwf.Api.Configuration;

namespace Jackcwf.Api.Telemetry;

public static class TelemetryExtensions
{
    public static IHostApplicationBuilder AddTelemetry(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSettings<BuildOptions>(BuildOptions.Section).ValidateDataAnnotations();
        builder.Services.AddSingleton<JackcwfMetrics>();
        return builder;
    }
}
