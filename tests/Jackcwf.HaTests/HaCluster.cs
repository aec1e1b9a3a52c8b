using System.Diagnostics;
using Jackcwf.Testing;
using Npgsql;

namespace Jackcwf.HaTests;

/// <summary>What a cluster runs with.</summary>
public sealed record HaClusterOptions
{
    public int Replicas { get; init; } = 3;

    /// <summary>Delay between the demo model's words: streams last a few seconds.</summary>
    public int ChunkDelayMs { get; init; } = 60;

    /// <summary>The generation lease (<c>Chat:LeaseSeconds</c>); the crash test shortens it.</summary>
    public int? LeaseSeconds { get; init; }

    /// <summary>Extra service variables (a provider pointing at the fake LLM, …).</summary>
    public IReadOnlyDictionary<string, string?> Environment { get; init; } = new Dictionary<string, string?>();
}

/// <summary>
/// One host's HA topology: a private PostgreSQL and Redis, N replicas of the built service sharing
/// them (each migrating at start-up under the advisory lock), and the load balancer in front.
/// </summary>
public sealed class HaCluster : IHaTarget, IAsyncDisposable
{
    private HaCluster(PostgresServer postgres, TestDatabase database, RedisServer redis, List<ApiProcess> replicas, HaClusterOptions options)
    {
        Postgres = postgres;
        Database = database;
        Redis = redis;
        Replicas = replicas;
        Options = options;
    }

    public PostgresServer Postgres { get; }

    public TestDatabase Database { get; }

    public RedisServer Redis { get; }

    public List<ApiProcess> Replicas { get; }

    public BalancerProcess Balancer { get; private set; } = null!;

    public HaClusterOptions Options { get; }

    public Uri BaseUrl => Balancer.BaseUrl;

    public static async Task<HaCluster> StartAsync(HaClusterOptions? options = null)
    {
        options ??= new HaClusterOptions();
        var postgres = await PostgresServer.StartAsync();
        TestDatabase? database = null;
        RedisServer? redis = null;
        var replicas = new List<ApiProcess>();
        try
        {
            database = await postgres.CreateDatabaseAsync("ha");
            redis = await RedisServer.StartAsync();
            var environment = new Dictionary<string, string?>(options.Environment)
            {
                ["DATABASE_URL"] = database.Url,
                ["REDIS_URL"] = redis.Url,
                ["DEMO_CHUNK_DELAY_MS"] = options.ChunkDelayMs.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["SHUTDOWN_DRAIN_DELAY_SECONDS"] = "2",
                ["GRACEFUL_SHUTDOWN_TIMEOUT"] = "20",
                ["MIGRATE_ON_STARTUP"] = "true",
                ["MONITORING_INTERVAL_SECONDS"] = "2",
                ["LOG_LEVEL"] = "Information",
                // A provider key (the fake LLM) would otherwise make its model the default.
                ["DEFAULT_MODEL"] = "demo/echo",
                // The auth test probes every replica many times a second with one account.
                ["RATE_LIMIT_USER_PER_MINUTE"] = "100000",
            };
            if (options.LeaseSeconds is { } lease)
            {
                environment["Chat__LeaseSeconds"] = lease.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
            // Started together: their migrations meet at the advisory lock, as in a real rollout.
            var starts = Enumerable.Range(0, options.Replicas)
                .Select(_ => ApiProcess.StartAsync(new ApiProcessOptions { Environment = environment, ReadyTimeout = TimeSpan.FromSeconds(120) }))
                .ToList();
            foreach (var start in starts)
            {
                try
                {
                    replicas.Add(await start);
                }
                catch
                {
                    foreach (var other in starts.Where(s => s.IsCompletedSuccessfully))
                    {
                        await other.Result.DisposeAsync();
                    }
                    throw;
                }
            }
            var cluster = new HaCluster(postgres, database, redis, replicas, options);
            cluster.Balancer = await BalancerProcess.StartAsync(replicas.Select(r => r.BaseUrl));
            return cluster;
        }
        catch
        {
            foreach (var r in replicas)
            {
                await r.DisposeAsync();
            }
            if (redis is not null)
            {
                await redis.DisposeAsync();
            }
            if (database is not null)
            {
                await database.DisposeAsync();
            }
            await postgres.DisposeAsync();
            throw;
        }
    }

    public HttpClient CreateClient(Uri? baseUrl = null) =>
        new(new SocketsHttpHandler { AllowAutoRedirect = false, PooledConnectionLifetime = TimeSpan.FromSeconds(30) })
        {
            BaseAddress = baseUrl ?? BaseUrl,
            Timeout = TimeSpan.FromSeconds(60),
        };

    /// <summary>
    /// Restarts every replica, one at a time, as an orchestrator does: SIGTERM (readiness turns 503,
    /// the balancer drops it, running answers finish), start it again, and wait until the balancer
    /// routes to all replicas before the next. Returns how long each restart took.
    /// </summary>
    public async Task<IReadOnlyList<TimeSpan>> RollingRestartAsync(Action<string>? log = null)
    {
        var took = new List<TimeSpan>();
        for (var i = 0; i < Replicas.Count; i++)
        {
            var stopwatch = Stopwatch.StartNew();
            var exit = await Replicas[i].StopAsync(TimeSpan.FromSeconds(60));
            log?.Invoke($"replica {i + 1} stopped (exit code {exit}) after {stopwatch.Elapsed.TotalSeconds:F1} s");
            await Replicas[i].RestartAsync();
            await Balancer.WaitForHealthyAsync(Replicas.Count, TimeSpan.FromSeconds(60));
            took.Add(stopwatch.Elapsed);
            log?.Invoke($"replica {i + 1} back in rotation after {stopwatch.Elapsed.TotalSeconds:F1} s");
        }
        return took;
    }

    public async Task<NpgsqlConnection> OpenDatabaseAsync()
    {
        var connection = new NpgsqlConnection(Postgres.ConnectionStringFor(Database.Name));
        await connection.OpenAsync();
        return connection;
    }

    /// <summary>Everything the replicas and the balancer printed, for failure messages.</summary>
    public string Logs(int tailLines = 80) =>
        string.Join("\n", Replicas.Select((r, i) => $"--- replica {i + 1} ---\n" + string.Join("\n", r.LogLines.TakeLast(tailLines))))
        + "\n--- balancer ---\n" + string.Join("\n", Balancer.Logs.Split('\n').TakeLast(tailLines));

    public async ValueTask DisposeAsync()
    {
        if (Balancer is not null)
        {
            await Balancer.DisposeAsync();
        }
        await Task.WhenAll(Replicas.Select(r => r.DisposeAsync().AsTask()));
        await Redis.DisposeAsync();
        await Database.DisposeAsync();
        await Postgres.DisposeAsync();
    }
}
