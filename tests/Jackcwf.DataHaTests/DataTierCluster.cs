using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Jackcwf.HaTests;
using Jackcwf.Testing;
using Npgsql;

namespace Jackcwf.DataHaTests;

/// <summary>A PostgreSQL member or Redis server as <c>health-check.sh --platform local</c> reports it.</summary>
public sealed record DataNode(string Kind, string Role, int Port, int Pid, int? PatroniPid);

/// <summary>
/// The local platform with its highly available data tier, exactly as an operator starts it:
/// <c>deploy-ha.sh --platform local --replicas 3 --ha-data</c> in a private state folder on free
/// ports (three etcd members, three PostgreSQL servers under Patroni, Redis master + 2 replicas + 3
/// sentinels, three replicas, the YARP balancer). The tests read which process to kill from
/// <c>health-check.sh</c>, switch over with <c>deploy-ha.sh --switchover</c> and bring killed
/// members back with <c>deploy-ha.sh --ha-data</c> again.
/// </summary>
public sealed partial class DataTierCluster : IHaTarget, IAsyncDisposable
{
    private static readonly TimeSpan ScriptTimeout = TimeSpan.FromMinutes(5);

    private readonly Dictionary<string, string> _environment;

    private DataTierCluster(string stateDir, Dictionary<string, string> environment, int basePort, int lbPort)
    {
        StateDir = stateDir;
        _environment = environment;
        BaseUrl = new Uri($"http://127.0.0.1:{lbPort}/");
        ReplicaUrls = Enumerable.Range(0, Replicas).Select(i => new Uri($"http://127.0.0.1:{basePort + i}/")).ToList();
    }

    public const int Replicas = 3;

    public string StateDir { get; }

    public Uri BaseUrl { get; }

    public IReadOnlyList<Uri> ReplicaUrls { get; }

    public string RedisPassword => File.ReadAllText(Path.Combine(StateDir, "secrets", "redis-password")).Trim();

    private string PostgresPassword => File.ReadAllText(Path.Combine(StateDir, "secrets", "postgres-password")).Trim();

    public static async Task<DataTierCluster> StartAsync(IReadOnlyDictionary<string, string> serviceEnvironment)
    {
        var stateDir = Path.Combine(Path.GetTempPath(), $"jackcwf-dataha-{Guid.NewGuid():N}"[..28]);
        Directory.CreateDirectory(stateDir);
        var taken = new HashSet<int>();
        int Port()
        {
            while (true)
            {
                var p = FreePort.GetReusable();
                if (taken.Add(p))
                {
                    return p;
                }
            }
        }
        string Ports() => string.Join(",", Port(), Port(), Port());
        var basePort = ConsecutiveFreePorts(Replicas, taken);
        var lbPort = Port();
        var environment = new Dictionary<string, string>(serviceEnvironment)
        {
            ["HA_DIR"] = stateDir,
            ["HA_LB_PORT"] = lbPort.ToString(CultureInfo.InvariantCulture),
            ["HA_BASE_PORT"] = basePort.ToString(CultureInfo.InvariantCulture),
            ["HA_PG_PORTS"] = Ports(),
            ["HA_PATRONI_PORTS"] = Ports(),
            ["HA_ETCD_PORTS"] = Ports(),
            ["HA_ETCD_PEER_PORTS"] = Ports(),
            ["HA_REDIS_PORTS"] = Ports(),
            ["HA_SENTINEL_PORTS"] = Ports(),
            ["HA_START_TIMEOUT"] = "150",
            ["JACKCWF_API_DLL"] = RepoPaths.ApiDll,
        };
        var cluster = new DataTierCluster(stateDir, environment, basePort, lbPort);
        try
        {
            await cluster.ScriptAsync("deploy-ha.sh", "--platform", "local", "--replicas", Replicas.ToString(CultureInfo.InvariantCulture), "--ha-data");
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>Runs a script of deployment/scripts with this deployment's settings; returns its output, throws on failure.</summary>
    public async Task<string> ScriptAsync(string script, params string[] arguments)
    {
        var (code, output) = await RunScriptAsync(script, arguments);
        return code == 0 ? output : throw new InvalidOperationException($"{script} {string.Join(' ', arguments)} exited with {code}:\n{output}");
    }

    private async Task<(int Code, string Output)> RunScriptAsync(string script, string[] arguments)
    {
        var start = new ProcessStartInfo(Path.Combine(RepoPaths.Root, "deployment", "scripts", script))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = RepoPaths.Root,
        };
        foreach (var a in arguments)
        {
            start.ArgumentList.Add(a);
        }
        // The deployment's own URLs come from the script; nothing of the test environment may leak in.
        start.Environment.Remove("DATABASE_URL");
        start.Environment.Remove("REDIS_URL");
        foreach (var (k, v) in _environment)
        {
            start.Environment[k] = v;
        }
        var output = new StringBuilder();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (output) { output.AppendLine(e.Data); } } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (output) { output.AppendLine(e.Data); } } };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var cts = new CancellationTokenSource(ScriptTimeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            throw new TimeoutException($"{script} {string.Join(' ', arguments)} did not finish within {ScriptTimeout}:\n{output}");
        }
        lock (output)
        {
            return (process.ExitCode, output.ToString());
        }
    }

    /// <summary>The data-tier lines of <c>health-check.sh --platform local</c>, whatever its verdict.</summary>
    public async Task<(List<DataNode> Nodes, string Output, bool Healthy)> HealthAsync()
    {
        var (code, output) = await RunScriptAsync("health-check.sh", ["--platform", "local"]);
        var nodes = new List<DataNode>();
        foreach (Match m in PostgresLine().Matches(output))
        {
            nodes.Add(new("postgresql", m.Groups[1].Value, int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture),
                int.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture), int.Parse(m.Groups[4].Value, CultureInfo.InvariantCulture)));
        }
        foreach (Match m in RedisLine().Matches(output))
        {
            nodes.Add(new("redis", m.Groups[1].Value, int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture),
                int.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture), null));
        }
        return (nodes, output, code == 0);
    }

    [GeneratedRegex(@"OK   postgresql (primary|standby) +127\.0\.0\.1:(\d+) \(pid (\d+), patroni pid (\d+)")]
    private static partial Regex PostgresLine();

    [GeneratedRegex(@"OK   redis (master|replica) +127\.0\.0\.1:(\d+) \(pid (\d+)")]
    private static partial Regex RedisLine();

    /// <summary>Waits until health-check.sh reports everything healthy and the condition holds; returns the nodes.</summary>
    public async Task<List<DataNode>> WaitForHealthAsync(Func<List<DataNode>, bool> condition, TimeSpan timeout, string what)
    {
        var stopwatch = Stopwatch.StartNew();
        var last = "";
        while (stopwatch.Elapsed < timeout)
        {
            var (nodes, output, healthy) = await HealthAsync();
            if (healthy && condition(nodes))
            {
                return nodes;
            }
            last = output;
            await Task.Delay(500);
        }
        throw new TimeoutException($"waited {timeout.TotalSeconds:F0} s for {what}; last health check:\n{last}");
    }

    /// <summary>Waits until health-check.sh reports a running primary matching <paramref name="which"/> (other members may still be down).</summary>
    public async Task<List<DataNode>> WaitForPrimaryAsync(Func<DataNode, bool> which, TimeSpan timeout)
    {
        var stopwatch = Stopwatch.StartNew();
        var last = "";
        while (stopwatch.Elapsed < timeout)
        {
            var (nodes, output, _) = await HealthAsync();
            if (nodes.Any(n => n is { Kind: "postgresql", Role: "primary" } && which(n)))
            {
                return nodes;
            }
            last = output;
            await Task.Delay(250);
        }
        throw new TimeoutException($"no new PostgreSQL primary within {timeout.TotalSeconds:F0} s; last health check:\n{last}");
    }

    /// <summary>Starts the data-tier members that are down (deploy-ha.sh --ha-data on the running deployment) and waits until all are healthy.</summary>
    public async Task EnsureWholeAsync()
    {
        var (nodes, _, healthy) = await HealthAsync();
        if (healthy && nodes.Count(n => n.Kind == "postgresql") == 3 && nodes.Count(n => n.Kind == "redis") == 3)
        {
            return;
        }
        await ScriptAsync("deploy-ha.sh", "--platform", "local", "--replicas", Replicas.ToString(CultureInfo.InvariantCulture), "--ha-data");
        await WaitForHealthAsync(n => n.Count(x => x.Kind == "postgresql") == 3 && n.Count(x => x.Kind == "redis") == 3,
            TimeSpan.FromSeconds(120), "every data-tier member healthy again");
    }

    /// <summary>PIDs of the replicas, as deploy-ha.sh recorded them.</summary>
    public IReadOnlyList<int> ReplicaPids() =>
        Enumerable.Range(1, Replicas).Select(i => int.Parse(File.ReadAllText(Path.Combine(StateDir, $"replica-{i}.pid")).Trim(), CultureInfo.InvariantCulture)).ToList();

    /// <summary>kill -9 of a whole PostgreSQL member, as a lost host: its Patroni, its postmaster and every backend.</summary>
    public static void KillPostgresMember(DataNode member)
    {
        Signals.Send(member.PatroniPid!.Value, Signals.SigKill);
        var children = ChildrenOf(member.Pid);
        Signals.Send(member.Pid, Signals.SigKill);
        foreach (var child in children)
        {
            Signals.Send(child, Signals.SigKill);
        }
    }

    private static List<int> ChildrenOf(int pid)
    {
        var list = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var candidate))
            {
                continue;
            }
            try
            {
                // /proc/<pid>/stat: "pid (comm) state ppid …"; comm may hold spaces, so split after the last ')'.
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                if (int.Parse(fields[1], CultureInfo.InvariantCulture) == pid)
                {
                    list.Add(candidate);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
            {
                // The process ended while we looked.
            }
        }
        return list;
    }

    /// <summary>Runs redis-cli against a Redis server of this deployment.</summary>
    public async Task<string> RedisCliAsync(int port, params string[] arguments)
    {
        var start = new ProcessStartInfo("redis-cli") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add("-p");
        start.ArgumentList.Add(port.ToString(CultureInfo.InvariantCulture));
        foreach (var a in arguments)
        {
            start.ArgumentList.Add(a);
        }
        start.Environment["REDISCLI_AUTH"] = RedisPassword;
        using var process = Process.Start(start)!;
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        return output.Trim();
    }

    public HttpClient CreateClient(Uri? baseUrl = null) =>
        new(new SocketsHttpHandler { AllowAutoRedirect = false, PooledConnectionLifetime = TimeSpan.FromSeconds(30) })
        {
            BaseAddress = baseUrl ?? BaseUrl,
            Timeout = TimeSpan.FromSeconds(90),
        };

    /// <summary>A connection to whichever member is the primary now (the same multi-host form the service uses).</summary>
    public async Task<NpgsqlConnection> OpenDatabaseAsync()
    {
        var hosts = string.Join(",", _environment["HA_PG_PORTS"].Split(',').Select(p => $"127.0.0.1:{p}"));
        var connection = new NpgsqlConnection(
            $"Host={hosts};Username=postgres;Password={PostgresPassword};Database=jackcwf;Target Session Attributes=primary;Pooling=false;Timeout=5");
        await connection.OpenAsync();
        return connection;
    }

    public string Logs(int tailLines = 80)
    {
        var parts = new List<string>();
        foreach (var name in Enumerable.Range(1, Replicas).Select(i => $"replica-{i}.log").Append("lb.log"))
        {
            var path = Path.Combine(StateDir, name);
            if (File.Exists(path))
            {
                parts.Add($"--- {name} ---\n" + string.Join("\n", File.ReadLines(path).TakeLast(tailLines)));
            }
        }
        return string.Join("\n", parts);
    }

    private static int ConsecutiveFreePorts(int count, HashSet<int> taken)
    {
        for (var attempt = 0; attempt < 500; attempt++)
        {
            var first = FreePort.GetReusable();
            var ports = Enumerable.Range(first, count).ToList();
            if (ports.All(p => !taken.Contains(p) && FreePort.IsFree(p)))
            {
                taken.UnionWith(ports);
                return first;
            }
        }
        throw new InvalidOperationException($"no {count} consecutive free ports found");
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await RunScriptAsync("deploy-ha.sh", ["--platform", "local", "--down"]);
        }
        finally
        {
            try
            {
                Directory.Delete(StateDir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
