using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;

namespace Jackcwf.ServiceDefaults;

/// <summary>
/// Set the moment the host is asked to stop: readiness turns 503 while requests are still served,
/// so load balancers stop sending new work before the listener closes.
/// </summary>
public sealed class DrainState
{
    private int _draining;
    private int _probed;

    public DrainState(IHostApplicationLifetime lifetime) =>
        lifetime.ApplicationStopping.Register(() => Interlocked.Exchange(ref _draining, 1));

    public bool IsDraining => Volatile.Read(ref _draining) == 1;

    public void BeginDraining() => Interlocked.Exchange(ref _draining, 1);

    /// <summary>
    /// True once anything asked <c>/health/ready</c>: a load balancer, an orchestrator or a container
    /// health check. Only then does anybody need the drain delay to learn that this replica is
    /// leaving; a process nobody probes (a developer's <c>./run.sh</c>) stops at once.
    /// </summary>
    public bool ReadinessProbed => Volatile.Read(ref _probed) == 1;

    internal void MarkProbed() => Volatile.Write(ref _probed, 1);
}

internal sealed class DrainHealthCheck(DrainState drain) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        drain.MarkProbed();
        return Task.FromResult(drain.IsDraining
            ? HealthCheckResult.Unhealthy("shutting down")
            : HealthCheckResult.Healthy());
    }
}
