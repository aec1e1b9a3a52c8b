using Jackcwf.Testing;

namespace Jackcwf.HaTests;

/// <summary>
/// One cluster for the whole assembly (starting three replicas, PostgreSQL, Redis and the balancer
/// is the slow part): every test starts from a whole cluster and leaves it whole, restarting what
/// it killed or stopped. The fake LLM is configured as the <c>openai</c> provider so provider calls
/// can be counted; the demo model (the default) streams the rest.
/// </summary>
public sealed class HaFixture : IAsyncLifetime
{
    /// <summary>Short, so the crash test sees the takeover quickly; long enough to ride out a brief database restart.</summary>
    public const int LeaseSeconds = 8;

    public const int ChunkDelayMs = 80;

    public FakeLlmServer Fake { get; private set; } = null!;

    public HaCluster Cluster { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        Fake = await FakeLlmServer.StartAsync();
        Fake.Default = FakeScenario.Echo with { ChunkDelay = TimeSpan.FromMilliseconds(50) };
        Cluster = await HaCluster.StartAsync(new HaClusterOptions
        {
            ChunkDelayMs = ChunkDelayMs,
            LeaseSeconds = LeaseSeconds,
            Environment = Fake.ProviderEnvironment(),
        });
    }

    /// <summary>Brings back anything a previous test left stopped, and waits until the balancer routes to every replica.</summary>
    public async Task EnsureWholeAsync()
    {
        if (!Cluster.Postgres.IsRunning)
        {
            await Cluster.Postgres.StartAsync();
        }
        if (!Cluster.Redis.IsRunning)
        {
            await Cluster.Redis.StartAsync();
        }
        foreach (var replica in Cluster.Replicas.Where(r => r.HasExited))
        {
            await replica.RestartAsync();
        }
        foreach (var replica in Cluster.Replicas)
        {
            await replica.WaitForReadyAsync(TimeSpan.FromSeconds(90));
        }
        await Cluster.Balancer.WaitForHealthyAsync(Cluster.Replicas.Count, TimeSpan.FromSeconds(60));
    }

    public async ValueTask DisposeAsync()
    {
        if (Cluster is not null)
        {
            await Cluster.DisposeAsync();
        }
        if (Fake is not null)
        {
            await Fake.DisposeAsync();
        }
    }
}
