using System.Diagnostics.Metrics;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Model;

namespace Jackcwf.LoadBalancer;

/// <summary>
/// The balancer's own Prometheus series: <c>jackcwf_lb_requests_total{destination,status_code}</c>,
/// <c>jackcwf_lb_retries_total{destination,reason}</c> and <c>jackcwf_lb_destination_healthy{destination}</c>.
/// </summary>
internal sealed class LoadBalancerMetrics
{
    public const string MeterName = "Jackcwf.LoadBalancer";

    private readonly Counter<long> _requests;
    private readonly Counter<long> _retries;

    public LoadBalancerMetrics(IMeterFactory meterFactory, IProxyStateLookup proxyState)
    {
        var meter = meterFactory.Create(MeterName);
        _requests = meter.CreateCounter<long>("jackcwf.lb.requests",
            description: "Requests answered through the balancer, by the replica that answered last and the status the client got.");
        _retries = meter.CreateCounter<long>("jackcwf.lb.retries",
            description: "Requests sent again to another replica, by the replica that refused and why.");
        meter.CreateObservableGauge("jackcwf.lb.destination.healthy", () => DestinationHealth(proxyState),
            description: "1 when the replica receives new requests (active and passive health checks pass), else 0.");
    }

    public void RecordRequest(DestinationState? destination, int statusCode) =>
        _requests.Add(1, new("destination", Label(destination)), new("status_code", statusCode));

    public void RecordRetry(DestinationState destination, string reason) =>
        _retries.Add(1, new("destination", Label(destination)), new("reason", reason));

    public static string Label(DestinationState? destination) => destination?.Model.Config.Address ?? "none";

    public static bool IsHealthy(DestinationState destination) =>
        destination.Health.Active != Yarp.ReverseProxy.Model.DestinationHealth.Unhealthy
        && destination.Health.Passive != Yarp.ReverseProxy.Model.DestinationHealth.Unhealthy;

    private static IEnumerable<Measurement<int>> DestinationHealth(IProxyStateLookup proxyState) =>
        proxyState.GetClusters()
            .SelectMany(c => c.Destinations.Values)
            .Select(d => new Measurement<int>(IsHealthy(d) ? 1 : 0, new KeyValuePair<string, object?>("destination", Label(d))));
}

/// <summary>Counts every proxied request once, after retries, with the status the client saw.</summary>
internal sealed class RequestMetricsMiddleware(RequestDelegate next, LoadBalancerMetrics metrics)
{
    public async Task InvokeAsync(HttpContext context)
    {
        try
        {
            await next(context);
        }
        finally
        {
            metrics.RecordRequest(context.GetReverseProxyFeature().ProxiedDestination, context.Response.StatusCode);
        }
    }
}
