using Microsoft.AspNetCore.Http.HttpResults;
using Yarp.ReverseProxy;

namespace Jackcwf.LoadBalancer;

internal static class LoadBalancerHealthApi
{
    public static void MapLoadBalancerHealth(this IEndpointRouteBuilder app)
    {
        app.MapGet("/lb/health", GetHealth).WithName("LoadBalancerHealth");
        app.MapGet("/lb/ready", GetReadiness).WithName("LoadBalancerReadiness");
    }

    /// <summary>200 while the balancer runs, with the state of every replica it knows.</summary>
    private static Ok<LoadBalancerHealth> GetHealth(IProxyStateLookup proxyState) =>
        TypedResults.Ok(Describe(proxyState));

    /// <summary>503 when no replica can take a request, so an outer balancer or probe can tell.</summary>
    private static Results<Ok<LoadBalancerHealth>, JsonHttpResult<LoadBalancerHealth>> GetReadiness(IProxyStateLookup proxyState)
    {
        var health = Describe(proxyState);
        return health.HealthyDestinations > 0
            ? TypedResults.Ok(health)
            : TypedResults.Json(health, statusCode: StatusCodes.Status503ServiceUnavailable);
    }

    private static LoadBalancerHealth Describe(IProxyStateLookup proxyState)
    {
        var destinations = proxyState.GetClusters()
            .SelectMany(c => c.Destinations.Values.Select(d => new DestinationHealthReport(
                c.ClusterId, d.DestinationId, d.Model.Config.Address, LoadBalancerMetrics.IsHealthy(d),
                d.Health.Active.ToString(), d.Health.Passive.ToString(), d.ConcurrentRequestCount)))
            .ToList();
        var healthy = destinations.Count(d => d.Healthy);
        return new LoadBalancerHealth(healthy > 0 ? "healthy" : "degraded", DateTimeOffset.UtcNow, healthy, destinations);
    }
}

internal sealed record LoadBalancerHealth(string Status, DateTimeOffset Timestamp, int HealthyDestinations, IReadOnlyList<DestinationHealthReport> Destinations);

internal sealed record DestinationHealthReport(string Cluster, string Id, string Address, bool Healthy, string Active, string Passive, int ActiveRequests);
