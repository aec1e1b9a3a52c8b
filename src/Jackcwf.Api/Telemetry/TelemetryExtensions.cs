namespace Jackcwf.Api.Telemetry;

public static class TelemetryExtensions
{
    public static IHostApplicationBuilder AddTelemetry(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<JackcwfMetrics>();
        return builder;
    }
}
