using System.Diagnostics;
using System.Text.RegularExpressions;
using Jackcwf.MonitoringTests.Infrastructure;
using Jackcwf.Testing;
using Npgsql;
using StackExchange.Redis;

namespace Jackcwf.MonitoringTests.Live;

/// <summary>
/// The data-tier alerts read metrics of the PostgreSQL and Redis exporters, not of the service. These
/// tests run the real exporters (Debian prometheus-postgres-exporter with the custom queries of
/// deployment/monitoring/postgres-exporter/queries.yaml, and prometheus-redis-exporter) against a real
/// PostgreSQL primary with a synchronous standby and a real Redis master, replica and sentinel, and
/// check that every metric name the rules use is exported, with the values the alerts expect.
/// </summary>
public sealed partial class DataTierExporterTests(DataTierFixture tier) : IClassFixture<DataTierFixture>
{
    [Fact]
    public void EveryExporterMetricTheDataTierAlertsUseIsReallyExported()
    {
        var used = DataTierFixture.DataTierMetricNames();
        Assert.Contains("pg_replication_is_replica", used);
        Assert.Contains("redis_sentinel_master_status", used);

        var exported = tier.AllScrapes.SelectMany(s => SampleName().Matches(s).Select(m => m.Groups[1].Value)).ToHashSet(StringComparer.Ordinal);
        var missing = used.Where(n => !exported.Contains(n)).ToList();

        Assert.True(missing.Count == 0,
            "metrics used by the jackcwf-data-tier rules that the real exporters do not export: " + string.Join(", ", missing)
            + "\nexported pg_/redis_ names:\n  " + string.Join("\n  ", exported.Where(e => e.StartsWith("pg_") || e.StartsWith("redis_")).Order(StringComparer.Ordinal)));
    }

    [Fact]
    public void PostgresExporterReportsTheRoleAndTheSynchronousStandbyTheAlertsRelyOn()
    {
        Assert.Equal(0, Value(tier.PrimaryScrape, "pg_replication_is_replica"));
        Assert.Equal(1, Value(tier.StandbyScrape, "pg_replication_is_replica"));
        Assert.Equal(1, Value(tier.PrimaryScrape, "pg_replication_standbys_synchronous"));
        Assert.Equal(0, Value(tier.StandbyScrape, "pg_replication_standbys_synchronous"));
        Assert.True(Value(tier.StandbyScrape, "pg_replication_lag_seconds") >= 0);
    }

    [Fact]
    public void RedisExporterReportsTheSentinelsMasterAndQuorum()
    {
        Assert.Matches($"redis_sentinel_master_status\\{{[^}}]*master_address=\"127.0.0.1:{tier.MasterPort}\"[^}}]*master_name=\"mymaster\"", tier.SentinelScrape);
        Assert.Equal(1, Value(tier.SentinelScrape, "redis_sentinel_master_ckquorum_status"));
        Assert.Equal(1, Value(tier.SentinelScrape, "redis_sentinel_master_ok_sentinels"));
        Assert.Equal(1, Value(tier.SentinelScrape, "redis_up"));
    }

    /// <summary>
    /// JackcwfRedisMemoryHigh and JackcwfRedisMemoryCritical divide the exporter's redis_memory_used_bytes by its
    /// redis_memory_max_bytes. A real Prometheus scrapes the master's exporter and evaluates the alerts' expressions
    /// as the master goes from no maxmemory (the exporter reports 0: nothing may be selected) to a maxmemory far
    /// above its data, to 88% of it, to 97%.
    /// </summary>
    [Fact]
    public async Task TheRedisMemoryAlertsSelectTheMasterOnlyOnceItIsFilledPastTheirShareOfItsMaxmemory()
    {
        var high = MonitoringFiles.Alerts.Single(a => a.Alert == "JackcwfRedisMemoryHigh").Expr.Trim();
        var critical = MonitoringFiles.Alerts.Single(a => a.Alert == "JackcwfRedisMemoryCritical").Expr.Trim();
        // The fixture's master runs without a maxmemory.
        Assert.Equal(0, Value(tier.MasterScrape, "redis_memory_max_bytes"));
        Assert.True(Value(tier.MasterScrape, "redis_memory_used_bytes") > 0);

        await using var redis = await tier.ConnectMasterAsync();
        var server = redis.GetServer("127.0.0.1", tier.MasterPort);
        await using var prometheus = await PrometheusServer.StartAsync($"127.0.0.1:{tier.MasterExporterPort}", MonitoringFiles.RuleFiles);
        var scraped = await prometheus.EventuallyAsync("redis_memory_used_bytes", v => v > 0);
        Assert.True(scraped > 0, $"Prometheus never scraped redis_memory_used_bytes from the exporter:\n{prometheus.Logs}");
        var unset = await prometheus.ValueAsync("redis_memory_max_bytes");
        Assert.True(unset == 0, $"redis_memory_max_bytes = {unset} without a maxmemory.");
        Assert.Empty(await prometheus.QueryAsync(high));
        Assert.Empty(await prometheus.QueryAsync(critical));

        const long maxmemory = 32L * 1024 * 1024;
        try
        {
            await server.ConfigSetAsync("maxmemory", maxmemory);
            var max = await prometheus.EventuallyAsync("redis_memory_max_bytes", v => v == maxmemory);
            Assert.True(max == maxmemory, $"redis_memory_max_bytes = {max} after CONFIG SET maxmemory {maxmemory}.");
            Assert.True(await UsedMemoryAsync(server) < 0.5 * maxmemory);
            Assert.Empty(await prometheus.QueryAsync(high));

            await FillAsync(redis, server, 0.88 * maxmemory, "a");
            var selected = await prometheus.EventuallyAsync($"max({high})", v => v >= 0.85);
            Assert.True(selected >= 0.85,
                $"`{high}` should select the master filled to 88% of its maxmemory (got {selected?.ToString() ?? "nothing"}; Redis reports {await UsedMemoryAsync(server)} bytes used).");
            var series = Assert.Single(await prometheus.QueryAsync(high));
            Assert.Equal($"127.0.0.1:{tier.MasterExporterPort}", (string?)series!["metric"]!["instance"]);
            var share = double.Parse((string)series["value"]![1]!, System.Globalization.CultureInfo.InvariantCulture);
            Assert.InRange(share, 0.85, 0.95);
            Assert.Empty(await prometheus.QueryAsync(critical));

            await FillAsync(redis, server, 0.97 * maxmemory, "b");
            var full = await prometheus.EventuallyAsync($"count({critical})", v => v == 1);
            Assert.True(full == 1,
                $"`{critical}` should select the master filled to 97% of its maxmemory (got {full?.ToString() ?? "nothing"}; Redis reports {await UsedMemoryAsync(server)} bytes used).");
        }
        finally
        {
            await server.FlushAllDatabasesAsync();
            await server.ConfigSetAsync("maxmemory", 0);
        }
    }

    /// <summary>
    /// Writes 60,000-byte values until Redis uses at least <paramref name="bytes"/>, then waits for the replica to
    /// have them. The replica's output buffer counts in the used memory until the replica has read it (on a busy
    /// machine, megabytes of it): the fill counts without it, as Redis does against its maxmemory, and leaves it
    /// drained, so that what the exporter reports next is what the keys hold.
    /// </summary>
    private static async Task FillAsync(ConnectionMultiplexer redis, IServer server, double bytes, string prefix)
    {
        var db = redis.GetDatabase();
        var value = new string('x', 60_000);
        for (var i = 0; await UsedMemoryAsync(server, withoutReplicaBuffers: true) < bytes; i++)
        {
            Assert.True(i < 10_000, $"Redis did not reach {bytes} bytes used");
            await db.StringSetAsync($"fill:{prefix}:{i}", value);
        }

        var replicas = (long)await db.ExecuteAsync("WAIT", 1, 30_000);
        Assert.Equal(1, replicas);
    }

    private static async Task<long> UsedMemoryAsync(IServer server, bool withoutReplicaBuffers = false)
    {
        var info = (string?)await server.ExecuteAsync("INFO", "memory") ?? "";
        long Field(string name) => long.Parse(Regex.Match(info, $"^{name}:(\\d+)", RegexOptions.Multiline).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        return Field("used_memory") - (withoutReplicaBuffers ? Field("mem_clients_slaves") : 0);
    }

    private static double Value(string scrape, string name)
    {
        var match = Regex.Match(scrape, $"^{Regex.Escape(name)}(?:\\{{[^}}]*\\}})? (\\S+)$", RegexOptions.Multiline);
        Assert.True(match.Success, $"{name} is not in the scrape:\n{scrape}");
        return double.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    [GeneratedRegex(@"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{| )", RegexOptions.Multiline)]
    private static partial Regex SampleName();
}

/// <summary>PostgreSQL primary + synchronous standby, Redis master + replica + sentinel, and their exporters (one set per class).</summary>
public sealed partial class DataTierFixture : IAsyncLifetime
{
    private const string RedisPassword = "data-tier-test-password";
    private readonly List<Process> _processes = [];
    private readonly List<string> _directories = [];
    private PostgresServer? _primary;
    private string? _standbyData;

    public string PrimaryScrape { get; private set; } = "";

    public string StandbyScrape { get; private set; } = "";

    public string MasterScrape { get; private set; } = "";

    public string SentinelScrape { get; private set; } = "";

    public int MasterPort { get; private set; }

    /// <summary>The port of the redis_exporter that scrapes the master.</summary>
    public int MasterExporterPort { get; private set; }

    public Task<ConnectionMultiplexer> ConnectMasterAsync() => ConnectionMultiplexer.ConnectAsync(new ConfigurationOptions
    {
        EndPoints = { { "127.0.0.1", MasterPort } },
        Password = RedisPassword,
        AllowAdmin = true,
    });

    public IEnumerable<string> AllScrapes => [PrimaryScrape, StandbyScrape, MasterScrape, SentinelScrape];

    /// <summary>pg_* and redis_* metric names in the expressions of the jackcwf-data-tier rule group.</summary>
    public static IReadOnlySet<string> DataTierMetricNames()
    {
        var text = File.ReadAllText(MonitoringFiles.AlertsFile);
        var start = text.IndexOf("- name: jackcwf-data-tier", StringComparison.Ordinal);
        Assert.True(start >= 0, "alerts.yml has no jackcwf-data-tier group");
        var end = text.IndexOf("\n  - name: ", start + 1, StringComparison.Ordinal);
        var group = end < 0 ? text[start..] : text[start..end];
        var expressions = string.Join('\n', Regex.Matches(group, @"expr: (?:\|\n((?:          .*\n)+)|(.*))").Select(m => m.Groups[1].Value + m.Groups[2].Value));
        return ExporterMetric().Matches(expressions).Select(m => m.Value).ToHashSet(StringComparer.Ordinal);
    }

    public async ValueTask InitializeAsync()
    {
        var ct = TestContext.Current.CancellationToken;
        _primary = await PostgresServer.StartAsync(cancellationToken: ct);
        await using (var connection = new NpgsqlConnection(_primary.ConnectionString))
        {
            await connection.OpenAsync(ct);
            await using var command = new NpgsqlCommand("ALTER SYSTEM SET synchronous_standby_names = '*'; ", connection);
            await command.ExecuteNonQueryAsync(ct);
            await using var reload = new NpgsqlCommand("SELECT pg_reload_conf()", connection);
            await reload.ExecuteNonQueryAsync(ct);
        }
        var standbyPort = FreePort.GetReusable();
        var bin = Path.GetDirectoryName(Directory.GetFiles("/usr/lib/postgresql", "pg_ctl", SearchOption.AllDirectories).Order().Last())!;
        var standbyDir = Directory.CreateTempSubdirectory("jackcwf-standby-").FullName;
        _directories.Add(standbyDir);
        _standbyData = Path.Combine(standbyDir, "data");
        await RunAsync("chown", ["postgres:postgres", standbyDir]);
        await RunAsPostgresAsync(Path.Combine(bin, "pg_basebackup"), ["-h", "127.0.0.1", "-p", _primary.Port.ToString(), "-U", "postgres", "-D", _standbyData, "-R", "-X", "stream", "--no-sync"]);
        // A hot standby needs at least the primary's max_connections (PostgresServer sets 200).
        await RunAsPostgresAsync(Path.Combine(bin, "pg_ctl"),
            ["-D", _standbyData, "-l", Path.Combine(standbyDir, "standby.log"), "-w", "-t", "60", "-o",
             $"-p {standbyPort} -c listen_addresses=127.0.0.1 -k {standbyDir} -c cluster_name=standby1 -c fsync=off -c max_connections=200", "start"]);

        MasterPort = FreePort.GetReusable();
        var replicaPort = FreePort.GetReusable();
        var sentinelPort = FreePort.GetReusable();
        var redisDir = Directory.CreateTempSubdirectory("jackcwf-sentinel-").FullName;
        _directories.Add(redisDir);
        Start("redis-server", ["--port", MasterPort.ToString(), "--bind", "127.0.0.1", "--save", "", "--requirepass", RedisPassword, "--masterauth", RedisPassword, "--dir", redisDir]);
        Start("redis-server", ["--port", replicaPort.ToString(), "--bind", "127.0.0.1", "--save", "", "--requirepass", RedisPassword, "--masterauth", RedisPassword,
            "--replicaof", "127.0.0.1", MasterPort.ToString(), "--dir", redisDir]);
        var sentinelConfig = Path.Combine(redisDir, "sentinel.conf");
        await File.WriteAllTextAsync(sentinelConfig, $"""
            port {sentinelPort}
            bind 127.0.0.1
            dir {redisDir}
            requirepass {RedisPassword}
            sentinel monitor mymaster 127.0.0.1 {MasterPort} 1
            sentinel auth-pass mymaster {RedisPassword}

            """, ct);
        Start("redis-sentinel", [sentinelConfig]);

        var queries = Path.Combine(MonitoringFiles.Directory, "postgres-exporter", "queries.yaml");
        var primaryExporter = StartPostgresExporter(_primary.Port, queries);
        var standbyExporter = StartPostgresExporter(standbyPort, queries);
        var masterExporter = MasterExporterPort = StartRedisExporter(MasterPort);
        var sentinelExporter = StartRedisExporter(sentinelPort);

        // Wait for the facts the assertions read, not for a time: the standby streaming synchronously,
        // the sentinel having discovered the replica.
        PrimaryScrape = await ScrapeUntilAsync(primaryExporter, s => s.Contains("pg_replication_standbys_synchronous{") && !s.Contains("pg_replication_standbys_synchronous{server=\"127.0.0.1:" + _primary.Port + "\"} 0"), ct);
        StandbyScrape = await ScrapeUntilAsync(standbyExporter, s => s.Contains("pg_replication_is_replica{"), ct);
        MasterScrape = await ScrapeUntilAsync(masterExporter, s => s.Contains("redis_connected_slaves 1"), ct);
        SentinelScrape = await ScrapeUntilAsync(sentinelExporter, s => Regex.IsMatch(s, @"redis_sentinel_master_ok_slaves\{[^}]*\} 1"), ct);
    }

    private int StartPostgresExporter(int postgresPort, string queries)
    {
        var port = FreePort.GetReusable();
        Start("prometheus-postgres-exporter", [$"--web.listen-address=127.0.0.1:{port}", $"--extend.query-path={queries}"],
            new() { ["DATA_SOURCE_NAME"] = $"postgresql://postgres@127.0.0.1:{postgresPort}/postgres?sslmode=disable" });
        return port;
    }

    private int StartRedisExporter(int redisPort)
    {
        var port = FreePort.GetReusable();
        Start("prometheus-redis-exporter", ["-web.listen-address", $"127.0.0.1:{port}", "-redis.addr", $"redis://127.0.0.1:{redisPort}"],
            new() { ["REDIS_PASSWORD"] = RedisPassword });
        return port;
    }

    private static async Task<string> ScrapeUntilAsync(int port, Func<string, bool> ready, CancellationToken ct)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var last = "";
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(TimeSpan.FromSeconds(90));
        while (true)
        {
            try
            {
                last = await http.GetStringAsync($"http://127.0.0.1:{port}/metrics", deadline.Token);
                if (ready(last)) return last;
            }
            catch (HttpRequestException)
            {
                // The exporter is still starting.
            }
            catch (OperationCanceledException) when (deadline.IsCancellationRequested && !ct.IsCancellationRequested)
            {
                throw new TimeoutException($"the exporter on port {port} never reported the expected state; last scrape:\n{last}");
            }
            try
            {
                await Task.Delay(200, deadline.Token);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                throw new TimeoutException($"the exporter on port {port} never reported the expected state; last scrape:\n{last}");
            }
        }
    }

    private void Start(string file, IEnumerable<string> arguments, Dictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        foreach (var (key, value) in environment ?? []) start.Environment[key] = value;
        var process = Process.Start(start) ?? throw new InvalidOperationException($"{file} did not start; is it installed (tests/apt-packages.txt)?");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _processes.Add(process);
    }

    private static Task RunAsPostgresAsync(string tool, IEnumerable<string> arguments) =>
        Environment.IsPrivilegedProcess ? RunAsync("runuser", ["-u", "postgres", "--", tool, .. arguments]) : RunAsync(tool, arguments);

    private static Task RunAsync(string file, IEnumerable<string> arguments) =>
        ExternalCommand.RunCheckedAsync(file, arguments, Timeout.InfiniteTimeSpan, TestContext.Current.CancellationToken);

    public async ValueTask DisposeAsync()
    {
        foreach (var process in _processes)
        {
            if (!process.HasExited) process.Kill();
            await process.WaitForExitAsync();
            process.Dispose();
        }
        if (_standbyData is not null && File.Exists(Path.Combine(_standbyData, "postmaster.pid")))
        {
            var pid = int.Parse(File.ReadLines(Path.Combine(_standbyData, "postmaster.pid")).First());
            Signals.Send(pid, Signals.SigQuit);
        }
        if (_primary is not null) await _primary.DisposeAsync();
        foreach (var directory in _directories)
        {
            try
            {
                Directory.Delete(directory, recursive: true);
            }
            catch (IOException)
            {
                // The standby may still be writing its last file; the temp folder is cleaned by the OS.
            }
        }
    }

    [GeneratedRegex(@"\b(?:pg|redis)_[a-z0-9_]+\b")]
    private static partial Regex ExporterMetric();
}
