namespace Jackcwf.DataHaTests;

/// <summary>
/// One deployment for the assembly: the demo model streams every answer word by word (80 ms apart,
/// so several answers are always in flight when something breaks); the rest is the platform's
/// defaults, lease and retries included.
/// </summary>
public sealed class DataTierFixture : IAsyncLifetime
{
    public DataTierCluster Cluster { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        // Every test user signs in from 127.0.0.1: the per-address sign-in throttles would refuse
        // the load driver's users long before any failover, so they are lifted as in every suite.
        var environment = new Dictionary<string, string>(Jackcwf.Testing.ApiProcess.RelaxedAuthLimits)
        {
            ["DEMO_CHUNK_DELAY_MS"] = "80",
            ["SHUTDOWN_DRAIN_DELAY_SECONDS"] = "2",
            ["MONITORING_INTERVAL_SECONDS"] = "2",
            ["LOG_LEVEL"] = "Information",
            ["DEFAULT_MODEL"] = "demo/echo",
            ["RATE_LIMIT_USER_PER_MINUTE"] = "100000",
        };
        Cluster = await DataTierCluster.StartAsync(environment);
    }

    public async ValueTask DisposeAsync()
    {
        if (Cluster is not null)
        {
            await Cluster.DisposeAsync();
        }
    }
}
