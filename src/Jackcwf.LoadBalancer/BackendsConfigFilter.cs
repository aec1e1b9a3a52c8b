using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Configuration;

namespace Jackcwf.LoadBalancer;

/// <summary>
/// Replaces the destinations of appsettings.json with <c>LB_BACKENDS</c> / <c>--Backends</c> when given, and
/// applies <c>LB_STICKY</c>, so scripts configure the balancer without editing files.
/// </summary>
internal sealed class BackendsConfigFilter(IOptionsMonitor<LoadBalancerOptions> options) : IProxyConfigFilter
{
    public ValueTask<ClusterConfig> ConfigureClusterAsync(ClusterConfig cluster, CancellationToken cancel)
    {
        if (cluster.ClusterId != LoadBalancerOptions.ClusterId)
        {
            return ValueTask.FromResult(cluster);
        }

        var settings = options.CurrentValue;
        var backends = settings.BackendUris();
        if (backends.Count > 0)
        {
            cluster = cluster with
            {
                Destinations = backends
                    .Select((uri, i) => (Id: $"replica{i + 1}", Config: new DestinationConfig { Address = uri.ToString() }))
                    .ToDictionary(d => d.Id, d => d.Config),
            };
        }
        if (settings.Sticky is { } sticky)
        {
            cluster = cluster with
            {
                SessionAffinity = (cluster.SessionAffinity ?? new SessionAffinityConfig()) with { Enabled = sticky },
            };
        }
        return ValueTask.FromResult(cluster);
    }

    public ValueTask<RouteConfig> ConfigureRouteAsync(RouteConfig route, ClusterConfig? cluster, CancellationToken cancel) =>
        ValueTask.FromResult(route);
}
