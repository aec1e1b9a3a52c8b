using System.Diagnostics;
using Jackcwf.Api.Telemetry;
using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Web;

/// <summary>
/// One log line per request, kept off the hot path: failed requests (4xx, 5xx) are logged at
/// Information, successful ones at Debug unless the access log is on (<c>ACCESS_LOG=true</c>), so
/// a busy gateway does not spend its CPU (and the console logger's queue) on "200 OK" lines. Also
/// counts errors and active users for the metrics. Method, path and status only: never bodies,
/// query strings or headers (they may hold secrets).
/// </summary>
internal sealed partial class RequestLog(RequestDelegate next, ILoggerFactory loggers, JackcwfMetrics metrics, IOptions<ServerOptions> server)
{
    private readonly ILogger _logger = loggers.CreateLogger("Jackcwf.Requests");
    private readonly LogLevel _successLevel = server.Value.AccessLog ? LogLevel.Information : LogLevel.Debug;

    public async Task InvokeAsync(HttpContext ctx)
    {
        var start = Stopwatch.GetTimestamp();
        try
        {
            await next(ctx);
        }
        finally
        {
            var status = ctx.Response.StatusCode;
            if (status >= 400)
            {
                metrics.HttpError(status, WebExtensions.ErrorTypeOf(ctx, status));
            }
            if (ctx.User.Identity?.IsAuthenticated == true
                && Guid.TryParse(ctx.User.FindFirst(System.Security.Claims.ClaimTypes.NameIdentifier)?.Value, out var uid))
            {
                metrics.UserSeen(uid);
            }
            var level = status >= 400 ? LogLevel.Information : _successLevel;
            var path = ctx.Request.Path;
            if (_logger.IsEnabled(level) && !path.StartsWithSegments("/health") && !path.StartsWithSegments("/metrics"))
            {
                Responded(_logger, level, ctx.Request.Method, path.Value, status, Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            }
        }
    }

    [LoggerMessage(EventId = 1, Message = "HTTP {Method} {Path} responded {StatusCode} in {ElapsedMs:0.0} ms")]
    private static partial void Responded(ILogger logger, LogLevel level, string method, string? path, int statusCode, double elapsedMs);
}
