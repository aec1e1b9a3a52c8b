using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Jackcwf.ServiceDefaults;

internal static class HealthWriters
{
    public static readonly Dictionary<HealthStatus, int> StatusCodes = new()
    {
        [HealthStatus.Healthy] = Microsoft.AspNetCore.Http.StatusCodes.Status200OK,
        [HealthStatus.Degraded] = Microsoft.AspNetCore.Http.StatusCodes.Status200OK,
        [HealthStatus.Unhealthy] = Microsoft.AspNetCore.Http.StatusCodes.Status503ServiceUnavailable,
    };

    private static string Word(HealthStatus s) => s == HealthStatus.Unhealthy ? "unhealthy" : s == HealthStatus.Degraded ? "degraded" : "healthy";

    public static Task Plain(HttpContext ctx, HealthReport report)
    {
        ctx.Response.ContentType = "text/plain";
        ctx.Response.Headers.CacheControl = "no-store";
        return ctx.Response.WriteAsync(Word(report.Status));
    }

    /// <summary>The seed's shape: <c>{"status":"healthy","timestamp":"…"}</c>.</summary>
    public static async Task Seed(HttpContext ctx, HealthReport report)
    {
        ctx.Response.ContentType = "application/json";
        ctx.Response.Headers.CacheControl = "no-store";
        await using var w = new Utf8JsonWriter(ctx.Response.Body);
        w.WriteStartObject();
        w.WriteString("status", Word(report.Status));
        w.WriteString("timestamp", DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffZ"));
        w.WriteEndObject();
        await w.FlushAsync();
    }

    public static async Task Detailed(HttpContext ctx, HealthReport report)
    {
        ctx.Response.ContentType = "application/json";
        ctx.Response.Headers.CacheControl = "no-store";
        await using var w = new Utf8JsonWriter(ctx.Response.Body);
        w.WriteStartObject();
        w.WriteString("status", Word(report.Status));
        w.WriteString("timestamp", DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffZ"));
        w.WriteStartObject("checks");
        foreach (var (name, entry) in report.Entries)
        {
            w.WriteStartObject(name);
            w.WriteString("status", Word(entry.Status));
            w.WriteNumber("durationMs", Math.Round(entry.Duration.TotalMilliseconds, 1));
            if (entry.Description is { } d)
            {
                w.WriteString("description", d);
            }
            w.WriteEndObject();
        }
        w.WriteEndObject();
        w.WriteEndObject();
        await w.FlushAsync();
    }
}
