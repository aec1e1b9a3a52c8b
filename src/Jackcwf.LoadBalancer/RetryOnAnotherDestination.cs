using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Model;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;

namespace Jackcwf.LoadBalancer;

/// <summary>
/// Sends a request to another replica when the first one refused it before answering: the connection
/// failed or was reset before any response byte, or the replica answered 503 (it is draining). Only
/// requests that are safe to send twice qualify: GET and HEAD, and POSTs that carry an
/// <c>Idempotency-Key</c> (the service deduplicates those). Nothing is retried once response bytes
/// went to the client, so a replica dying mid-stream surfaces to the client, which resumes with
/// <c>Last-Event-ID</c> or repeats the POST with the same key.
/// </summary>
internal sealed class RetryOnAnotherDestination(RequestDelegate next, IOptions<LoadBalancerOptions> options, LoadBalancerMetrics metrics)
{
    public const string IdempotencyKeyHeader = "Idempotency-Key";

    public async Task InvokeAsync(HttpContext context)
    {
        var settings = options.Value;
        if (settings.MaxAttempts <= 1 || !await IsRetryableAsync(context.Request, settings.MaxRetryBodyBytes))
        {
            await next(context);
            return;
        }

        var proxy = context.GetReverseProxyFeature();
        var candidates = proxy.AvailableDestinations;
        var tried = new List<DestinationState>();
        var attempt = new RetryAttempt();
        context.Features.Set(attempt);

        for (var number = 1; ; number++)
        {
            var remaining = candidates.Where(d => !tried.Contains(d)).ToList();
            proxy.AvailableDestinations = remaining;
            attempt.CanRetry = number < settings.MaxAttempts && remaining.Count > 1;
            attempt.RefusedWith503 = false;

            await next(context);

            if (!attempt.CanRetry || context.Response.HasStarted || proxy.ProxiedDestination is not { } destination)
            {
                return;
            }
            var reason = attempt.RefusedWith503 ? "unavailable" : FailedBeforeResponse(context) ? "connect_failure" : null;
            if (reason is null)
            {
                return;
            }

            tried.Add(destination);
            metrics.RecordRetry(destination, reason);
            context.Response.Clear();
            context.Features.Set<IForwarderErrorFeature>(null);
            if (context.Request.Body.CanSeek)
            {
                context.Request.Body.Position = 0;
            }
        }
    }

    /// <summary>
    /// Suppresses the body of a 503 that will be retried, so nothing reaches the client and the
    /// middleware above can send the request elsewhere.
    /// </summary>
    public static void AddRefusalTransform(TransformBuilderContext builder) =>
        builder.AddResponseTransform(transform =>
        {
            if (transform.ProxyResponse?.StatusCode == System.Net.HttpStatusCode.ServiceUnavailable
                && transform.HttpContext.Features.Get<RetryAttempt>() is { CanRetry: true } attempt)
            {
                transform.SuppressResponseBody = true;
                attempt.RefusedWith503 = true;
            }
            return ValueTask.CompletedTask;
        });

    private static bool FailedBeforeResponse(HttpContext context) =>
        context.Features.Get<IForwarderErrorFeature>() switch
        {
            // Connection refused, reset or closed before the response headers arrived.
            { Error: ForwarderError.Request } => true,
            // SocketsHttpHandler's ConnectTimeout (YARP reports it as a timeout; the activity timeout is minutes).
            { Error: ForwarderError.RequestTimedOut, Exception: { } ex } => ex.ToString().Contains("ConnectTimeout", StringComparison.Ordinal),
            _ => false,
        };

    private static async Task<bool> IsRetryableAsync(HttpRequest request, long maxBodyBytes)
    {
        if (HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method))
        {
            return true;
        }
        if (!HttpMethods.IsPost(request.Method) || !request.Headers.ContainsKey(IdempotencyKeyHeader))
        {
            return false;
        }
        // The body must be replayable: buffer it completely, but only when its length is known and small.
        switch (request.ContentLength)
        {
            case 0:
                return true;
            case null:
            case { } tooLong when tooLong > maxBodyBytes:
                return false;
        }
        var length = request.ContentLength.Value;
        request.EnableBuffering(bufferThreshold: (int)Math.Min(length, 64 * 1024), bufferLimit: maxBodyBytes);
        await request.Body.DrainAsync(request.HttpContext.RequestAborted);
        request.Body.Position = 0;
        return true;
    }
}

/// <summary>Per-request state shared by the retry middleware and the 503 transform.</summary>
internal sealed class RetryAttempt
{
    public bool CanRetry { get; set; }
    public bool RefusedWith503 { get; set; }
}
