using System.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Jackcwf.ServiceDefaults;

/// <summary>Cross-cutting concerns shared by every Jackcwf host: telemetry, health endpoints, drain on shutdown.</summary>
public static class Extensions
{
    /// <summary>Health checks with this tag gate <c>/health/ready</c> (and <c>/health</c>).</summary>
    public const string ReadyTag = "ready";

    /// <summary>The platform's own meter; every custom instrument hangs off it.</summary>
    public const string PlatformMeterName = "Jackcwf";

    public static TBuilder AddServiceDefaults<TBuilder>(this TBuilder builder, string serviceName = "jackcwf")
        where TBuilder : IHostApplicationBuilder
    {
        builder.ConfigureLogging();
        builder.ConfigureOpenTelemetry(serviceName);
        builder.Services.AddSingleton<DrainState>();
        builder.Services.AddHealthChecks()
            .AddCheck("self", () => HealthCheckResult.Healthy(), ["live"])
            .AddCheck<DrainHealthCheck>("draining", tags: [ReadyTag]);
        return builder;
    }

    private static void ConfigureLogging(this IHostApplicationBuilder builder)
    {
        builder.Logging.ClearProviders();
        builder.Logging.Configure(o => o.ActivityTrackingOptions =
            ActivityTrackingOptions.TraceId | ActivityTrackingOptions.SpanId);
        if (UseTextLogs(builder.Configuration["Logging:Format"], Console.IsOutputRedirected))
        {
            builder.Logging.AddSimpleConsole(o => { o.SingleLine = true; o.UseUtcTimestamp = true; o.TimestampFormat = "HH:mm:ss.fff "; });
        }
        else
        {
            builder.Logging.AddJsonConsole(o =>
            {
                o.IncludeScopes = true;
                o.UseUtcTimestamp = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
            });
        }
    }

    /// <summary>
    /// <c>LOG_FORMAT=text|json</c> wins; unset means one readable, coloured line per event for a person
    /// at a terminal and JSON when the output goes to a file, a pipe or a container runtime.
    /// </summary>
    public static bool UseTextLogs(string? format, bool outputRedirected) =>
        string.IsNullOrWhiteSpace(format)
            ? !outputRedirected
            : string.Equals(format.Trim(), "text", StringComparison.OrdinalIgnoreCase);

    private static void ConfigureOpenTelemetry(this IHostApplicationBuilder builder, string serviceName)
    {
        var otlp = !string.IsNullOrWhiteSpace(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]);
        var otel = builder.Services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService(builder.Configuration["OTEL_SERVICE_NAME"] ?? serviceName))
            .WithMetrics(metrics =>
            {
                metrics
                    .AddAspNetCoreInstrumentation()
                    .AddHttpClientInstrumentation()
                    .AddRuntimeInstrumentation()
                    .AddProcessInstrumentation()
                    .AddMeter(PlatformMeterName)
                    .AddMeter("Experimental.Microsoft.Extensions.AI")
                    .AddMeter("Microsoft.Extensions.AI")
                    .AddMeter("Npgsql")
                    .AddMeter("Yarp.ReverseProxy")
                    .AddPrometheusExporter();
                if (otlp)
                {
                    metrics.AddOtlpExporter();
                }
            });
        if (otlp)
        {
            otel.WithTracing(tracing => tracing
                .AddAspNetCoreInstrumentation(o => o.Filter = ctx => !IsOperationalPath(ctx.Request.Path))
                .AddHttpClientInstrumentation()
                .AddSource("Npgsql")
                .AddSource("Experimental.Microsoft.Extensions.AI")
                .AddSource(PlatformMeterName)
                .AddOtlpExporter());
        }
    }

    private static bool IsOperationalPath(PathString path) =>
        path.StartsWithSegments("/health") || path.StartsWithSegments("/metrics");

    /// <summary>Maps <c>/health</c>, <c>/health/live</c>, <c>/health/ready</c> and <c>/metrics</c> in every environment.</summary>
    public static WebApplication MapDefaultEndpoints(this WebApplication app)
    {
        app.MapPrometheusScrapingEndpoint("/metrics");
        app.MapHealthChecks("/health/live", new HealthCheckOptions
        {
            Predicate = r => r.Tags.Contains("live"),
            ResponseWriter = HealthWriters.Plain,
        });
        app.MapHealthChecks("/health/ready", new HealthCheckOptions
        {
            Predicate = r => r.Tags.Contains(ReadyTag),
            ResponseWriter = HealthWriters.Detailed,
            ResultStatusCodes = HealthWriters.StatusCodes,
        });
        app.MapHealthChecks("/health", new HealthCheckOptions
        {
            Predicate = r => r.Tags.Contains(ReadyTag) && r.Name != "draining",
            ResponseWriter = HealthWriters.Seed,
            ResultStatusCodes = HealthWriters.StatusCodes,
        });
        return app;
    }
}
