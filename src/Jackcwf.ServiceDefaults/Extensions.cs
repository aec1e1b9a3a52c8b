using System.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
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

    /// <summary><c>LOG_FORMAT</c>: text or json; see <see cref="UseTextLogs"/>.</summary>
    public const string LogFormatKey = "Logging:Format";

    public static TBuilder AddServiceDefaults<TBuilder>(this TBuilder builder, string serviceName = "jackcwf")
        where TBuilder : IHostApplicationBuilder
    {
        builder.ConfigureLogging();
        builder.ConfigureOpenTelemetry(serviceName);
        builder.Services.AddSingleton<DrainState>();
        if (builder.Configuration.GetValue<int?>(MetricsPortFilter.ConfigurationKey) is { } metricsPort)
        {
            builder.Services.AddSingleton<IStartupFilter>(new MetricsPortFilter(metricsPort));
        }
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
        if (UseTextLogs(builder.Configuration[LogFormatKey], Console.IsOutputRedirected))
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
                    .AddView(instrument => WideInstruments.Contains(instrument.Name) ? null : NarrowStream)
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

    /// <summary>
    /// The SDK sizes every metric stream for its cardinality limit when the instrument is first used (2,000
    /// series by default: about 176 KiB per instrument, 20 MiB for the ~110 instruments a replica
    /// publishes, most of them with a handful of series). Instruments whose labels do not multiply by
    /// route or model (runtime, process, Kestrel, Npgsql, most of the platform's own) get
    /// <see cref="NarrowCardinalityLimit"/>; past it, new label sets are folded into one
    /// <c>otel_metric_overflow="true"</c> series (totals stay right). The instruments listed in
    /// <see cref="WideInstruments"/> keep the default.
    /// </summary>
    public const int NarrowCardinalityLimit = 100;

    private static readonly MetricStreamConfiguration NarrowStream = new() { CardinalityLimit = NarrowCardinalityLimit };

    /// <summary>Instruments with a route, model or peer label: label sets multiply, the SDK's default limit stays.</summary>
    private static readonly HashSet<string> WideInstruments = new(StringComparer.Ordinal)
    {
        "http.server.request.duration",
        "aspnetcore.routing.match_attempts",
        "http.client.request.duration",
        "http.client.request.time_in_queue",
        "http.client.connection.duration",
        "gen_ai.client.operation.duration",
        "gen_ai.client.operation.time_to_first_chunk",
        "gen_ai.client.operation.time_per_output_chunk",
        "gen_ai.client.token.usage",
        "jackcwf_generations",
        "jackcwf_time_to_first_token_seconds",
        "jackcwf_generation_duration_seconds",
        "jackcwf_llm_tokens",
        "jackcwf_llm_cost_usd",
        "jackcwf_model_fallbacks",
        "jackcwf_provider_errors",
        "jackcwf_provider_retries",
        "jackcwf_embedding_duration_seconds",
        "jackcwf_embedding_inputs",
    };

    private static bool IsOperationalPath(PathString path) =>
        path.StartsWithSegments("/health") || path.StartsWithSegments("/metrics");

    /// <summary>
    /// Maps <c>/health</c>, <c>/health/live</c>, <c>/health/ready</c> and <c>/metrics</c> in every environment
    /// (with METRICS_PORT set, <see cref="MetricsPortFilter"/> keeps <c>/metrics</c> on that port only).
    /// </summary>
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

/// <summary>
/// With <c>Server:MetricsPort</c> (METRICS_PORT) set, <c>/metrics</c> answers only on that port and that
/// port answers nothing but <c>/metrics</c> and the health paths, so the public entry point (a proxy
/// forwarding the public port) never reaches the metrics. It runs first in the pipeline (a startup
/// filter), before authentication, and decides on the connection's local port, never on the Host
/// header, which a client chooses.
/// </summary>
public sealed class MetricsPortFilter(int metricsPort) : IStartupFilter
{
    public const string ConfigurationKey = "Server:MetricsPort";

    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
    {
        app.Use((ctx, nextMiddleware) =>
        {
            var onMetricsPort = ctx.Connection.LocalPort == metricsPort;
            var path = ctx.Request.Path;
            var allowed = onMetricsPort
                ? path.StartsWithSegments("/metrics") || path.StartsWithSegments("/health")
                : !path.StartsWithSegments("/metrics");
            if (allowed)
            {
                return nextMiddleware(ctx);
            }
            ctx.Response.StatusCode = StatusCodes.Status404NotFound;
            return Task.CompletedTask;
        });
        next(app);
    };
}
