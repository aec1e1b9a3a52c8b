using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;

namespace Jackcwf.LoadBalancer.Tests;

/// <summary>
/// deploy-ha.sh --platform local for real: PostgreSQL, Redis, three service replicas and the balancer
/// as processes on 127.0.0.1, a rolling restart under a steady load, and a clean stop.
/// </summary>
public sealed class LocalHaDeploymentTests
{
    // Fixed ports, so a failed run can be inspected and cleaned up by hand; all below the ephemeral range.
    private const int LbPort = 20180;
    private const int FirstReplicaPort = 20181;
    private const int Replicas = 3;
    private const int PgPort = 20190;
    private const int RedisPort = 20191;
    // Bounds, not expectations: on an idle 2-core machine a deployment takes ~30 s and a rolling
    // restart ~60 s, but replicas start several times slower when the cores are shared.
    private static readonly TimeSpan DeployTimeout = TimeSpan.FromSeconds(240);
    private static readonly TimeSpan RestartTimeout = TimeSpan.FromSeconds(420);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static void Log(string line) => TestContext.Current.TestOutputHelper?.WriteLine(line);

    [Fact]
    public async Task RollingRestartOfThreeReplicasUnderLoadFailsNoRequestAndDownLeavesNoProcess()
    {
        Assert.True(File.Exists(Scripts.ApiDll),
            $"The service is not built at {Scripts.ApiDll}: run `dotnet build -c Release src/Jackcwf.Api` or set JACKCWF_API_DLL.");
        Assert.True(Scripts.FindOnPath("redis-server") is not null,
            "redis-server is not installed (apt-get install redis-server; it is listed in tests/apt-packages.txt).");

        var haDir = Path.Combine(Path.GetTempPath(), $"jackcwf-ha-{Guid.NewGuid():N}");
        Directory.CreateDirectory(haDir);
        var environment = new Dictionary<string, string?>
        {
            ["HA_DIR"] = haDir,
            ["HA_LB_PORT"] = LbPort.ToString(),
            ["HA_BASE_PORT"] = FirstReplicaPort.ToString(),
            ["HA_PG_PORT"] = $"{PgPort}",
            ["HA_REDIS_PORT"] = $"{RedisPort}",
            ["HA_START_TIMEOUT"] = "200",
            ["JACKCWF_API_DLL"] = Scripts.ApiDll,
            ["JACKCWF_LB_DLL"] = Scripts.LoadBalancerDll,
            ["DATABASE_URL"] = null,
            ["REDIS_URL"] = null,
            // Long enough for the balancer's 2 x 2 s probes, short enough to keep the test brief.
            ["SHUTDOWN_DRAIN_DELAY_SECONDS"] = "6",
            ["GRACEFUL_SHUTDOWN_TIMEOUT"] = "20",
            ["DEMO_CHUNK_DELAY_MS"] = "20",
            // A starved replica must not call a healthy database unreachable (the default 2 s budget).
            ["HEALTH_CHECK_TIMEOUT_MS"] = "5000",
            ["LOG_FORMAT"] = "text",
        };
        var processes = new List<StartedProcess>();
        try
        {
            var deploy = await Scripts.RunAsync(Scripts.DeployHa, ["--platform", "local", "--replicas", $"{Replicas}"], environment, DeployTimeout);
            Log(deploy.Output);
            Assert.True(deploy.ExitCode == 0, $"deploy-ha.sh failed:\n{deploy.Output}");
            processes.AddRange(StartedProcesses(haDir));
            Assert.Equal(Replicas + 3, processes.Count); // replicas, balancer, Redis, PostgreSQL
            Assert.All(processes, p => Assert.True(p.IsRunning, $"{p} is not running after the deployment"));

            var health = await Scripts.RunAsync(Scripts.HealthCheck, ["--platform", "local"], environment, TimeSpan.FromSeconds(30));
            Log(health.Output);
            Assert.True(health.ExitCode == 0, $"health-check.sh failed:\n{health.Output}");
            Assert.Equal(Replicas, health.Output.Split('\n').Count(l => l.Contains("OK   replica", StringComparison.Ordinal)));

            await using var load = await Load.StartAsync(new Uri($"http://127.0.0.1:{LbPort}/"));
            await Task.Delay(TimeSpan.FromSeconds(2), Ct);
            var restart = await Scripts.RunAsync(Scripts.DeployHa, ["--platform", "local", "--rolling-restart"], environment, RestartTimeout);
            Log(restart.Output);
            await Task.Delay(TimeSpan.FromSeconds(2), Ct);
            var figures = await load.StopAsync();

            Assert.True(restart.ExitCode == 0, $"rolling restart failed:\n{restart.Output}");
            var retries = await load.RetriesAsync();
            var summary = $"deploy {deploy.Duration.TotalSeconds:F0} s; rolling restart of {Replicas} replicas {restart.Duration.TotalSeconds:F0} s; " +
                $"during it {figures}; balancer retries {retries}";
            Log(summary);
            // Also kept next to the test binary, since test output is shown only for failures.
            await File.WriteAllTextAsync(Path.Combine(AppContext.BaseDirectory, "ha-figures.txt"),
                $"{DateTime.UtcNow:u} {summary}\n{restart.Output}", CancellationToken.None);
            Assert.True(figures.Failures.Count == 0, $"{figures}\n{string.Join('\n', figures.Failures.Take(20))}");
            Assert.True(figures.Chats >= 20, $"too little load to prove anything: {figures}");
            var restarted = StartedProcesses(haDir).Except(processes).ToList();
            Assert.Equal(Replicas, restarted.Count); // every replica is a new process
            processes.AddRange(restarted);

            var down = await Scripts.RunAsync(Scripts.DeployHa, ["--platform", "local", "--down"], environment, DeployTimeout);
            Log(down.Output);
            Assert.True(down.ExitCode == 0, $"--down failed:\n{down.Output}");
            Assert.DoesNotContain(processes, p => p.IsRunning);
            int[] ports = [LbPort, .. Enumerable.Range(FirstReplicaPort, Replicas), PgPort, RedisPort];
            Assert.DoesNotContain(ports, IsListening);
            Assert.False(File.Exists(Path.Combine(haDir, "state.env")));
        }
        finally
        {
            // Whatever happened above, leave nothing running and nothing on disk.
            await Scripts.RunAsync(Scripts.DeployHa, ["--platform", "local", "--down", "--purge"], environment, DeployTimeout);
            foreach (var process in processes.Where(p => p.IsRunning))
            {
                Process.GetProcessById(process.Pid).Kill(entireProcessTree: true);
            }
            if (Directory.Exists(haDir))
            {
                Directory.Delete(haDir, recursive: true);
            }
        }
    }

    /// <summary>
    /// A process deploy-ha.sh started, identified by PID and command line: PIDs are reused quickly
    /// on a busy machine, so a PID alone does not say that our process is still there.
    /// </summary>
    private sealed record StartedProcess(int Pid, string CommandLine)
    {
        public bool IsRunning =>
            ReadProc(Pid, "cmdline") == CommandLine
            // A zombie has exited; it only waits for its parent to collect the exit code.
            && ReadProc(Pid, "stat") is { } stat && stat[(stat.LastIndexOf(')') + 2)..].StartsWith('Z') is false;

        public override string ToString() => $"pid {Pid} ({CommandLine.Replace('\0', ' ').Trim()})";
    }

    /// <summary>Everything deploy-ha.sh started, from the PID files of its state folder.</summary>
    private static IEnumerable<StartedProcess> StartedProcesses(string haDir)
    {
        var files = Directory.GetFiles(haDir, "*.pid").Append(Path.Combine(haDir, "postgres", "data", "postmaster.pid"));
        foreach (var file in files.Where(File.Exists))
        {
            if (int.TryParse(File.ReadLines(file).FirstOrDefault()?.Trim(), out var pid) && ReadProc(pid, "cmdline") is { } commandLine)
            {
                yield return new StartedProcess(pid, commandLine);
            }
        }
    }

    private static string? ReadProc(int pid, string file)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/{file}");
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static bool IsListening(int port)
    {
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        try
        {
            socket.Connect(IPAddress.Loopback, port);
            return true;
        }
        catch (System.Net.Sockets.SocketException)
        {
            return false;
        }
    }

    public sealed record Figures(int Requests, int Chats, IReadOnlyList<string> Failures, double P50Ms, double P99Ms, double MaxMs)
    {
        public override string ToString() =>
            $"{Requests} requests ({Chats} chats), {Failures.Count} failed, p50 {P50Ms:F0} ms, p99 {P99Ms:F0} ms, max {MaxMs:F0} ms";
    }

    /// <summary>
    /// A steady mix through the balancer, as clients send it: health probes, chats answered as JSON
    /// and chats streamed as SSE, each chat with its own Idempotency-Key (so the balancer may retry it).
    /// </summary>
    private sealed class Load : IAsyncDisposable
    {
        private readonly HttpClient _client;
        private readonly CancellationTokenSource _stop = new();
        private readonly List<Task> _workers = [];
        private readonly List<string> _failures = [];
        private readonly List<double> _latenciesMs = [];
        private int _chats;

        private Load(HttpClient client) => _client = client;

        public static async Task<Load> StartAsync(Uri balancer)
        {
            var client = new HttpClient { BaseAddress = balancer, Timeout = TimeSpan.FromSeconds(60) };
            var load = new Load(client);
            var email = $"ha-{Guid.NewGuid():N}@example.com";
            const string password = "Rolling-restart-1";
            (await client.PostAsJsonAsync("api/auth/register", new { email, password }, Ct)).EnsureSuccessStatusCode();
            using var login = await client.PostAsJsonAsync("api/auth/login", new { email, password }, Ct);
            login.EnsureSuccessStatusCode();
            var token = (await login.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("accessToken").GetString();
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);

            // Steady but modest: the replica being restarted shares the same cores and must still start.
            load._workers.Add(Task.Run(() => load.HealthLoopAsync()));
            foreach (var streamed in new[] { false, true })
            {
                using var created = await client.PostAsJsonAsync("api/conversations", new { title = "rolling restart" }, Ct);
                created.EnsureSuccessStatusCode();
                var conversation = (await created.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetString()!;
                load._workers.Add(Task.Run(() => load.ChatLoopAsync(conversation, streamed)));
            }
            return load;
        }

        public async Task<Figures> StopAsync()
        {
            await _stop.CancelAsync();
            await Task.WhenAll(_workers);
            lock (_latenciesMs)
            {
                var sorted = _latenciesMs.Order().ToArray();
                double At(double q) => sorted.Length == 0 ? 0 : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];
                return new Figures(sorted.Length, _chats, [.. _failures], At(0.50), At(0.99), sorted.LastOrDefault());
            }
        }

        public async Task<string> RetriesAsync()
        {
            var metrics = await _client.GetStringAsync("metrics", Ct);
            var retries = metrics.Split('\n').Where(l => l.StartsWith("jackcwf_lb_retries_total{", StringComparison.Ordinal))
                .Sum(l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture));
            return $"{retries:F0}";
        }

        public async ValueTask DisposeAsync()
        {
            if (!_stop.IsCancellationRequested)
            {
                await StopAsync();
            }
            _client.Dispose();
            _stop.Dispose();
        }

        private async Task HealthLoopAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                await MeasureAsync("GET /health", async () =>
                {
                    using var response = await _client.GetAsync("health", CancellationToken.None);
                    return response.StatusCode == HttpStatusCode.OK ? null : $"status {(int)response.StatusCode}";
                });
                await Task.Delay(100, CancellationToken.None);
            }
        }

        private async Task ChatLoopAsync(string conversation, bool streamed)
        {
            for (var n = 0; !_stop.IsCancellationRequested; n++)
            {
                var content = $"message {n} of a rolling restart";
                using var request = new HttpRequestMessage(HttpMethod.Post, $"api/conversations/{conversation}/messages")
                {
                    Content = JsonContent.Create(new { content }),
                };
                request.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString());
                if (streamed)
                {
                    request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
                }
                await MeasureAsync(streamed ? "POST message (SSE)" : "POST message", async () =>
                {
                    using var response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, CancellationToken.None);
                    var body = await response.Content.ReadAsStringAsync(CancellationToken.None);
                    if (response.StatusCode != HttpStatusCode.OK)
                    {
                        return $"status {(int)response.StatusCode}: {body[..Math.Min(body.Length, 300)]}";
                    }
                    if (streamed)
                    {
                        var done = body.IndexOf("event: done", StringComparison.Ordinal);
                        return done >= 0 && body.IndexOf(JsonSerializer.Serialize(content), done, StringComparison.Ordinal) >= 0
                            ? null
                            : $"stream without a done event carrying the text: {body[^Math.Min(body.Length, 300)..]}";
                    }
                    var answer = JsonDocument.Parse(body).RootElement.GetProperty("assistantMessage").GetProperty("content").GetString();
                    return answer == content ? null : $"answer \"{answer}\" instead of \"{content}\"";
                });
                Interlocked.Increment(ref _chats);
                await Task.Delay(150, CancellationToken.None);
            }
        }

        private async Task MeasureAsync(string what, Func<Task<string?>> send)
        {
            var clock = Stopwatch.StartNew();
            string? failure;
            try
            {
                failure = await send();
            }
            catch (Exception e)
            {
                failure = $"{e.GetType().Name}: {e.Message}";
            }
            lock (_latenciesMs)
            {
                _latenciesMs.Add(clock.Elapsed.TotalMilliseconds);
                if (failure is not null)
                {
                    _failures.Add($"{DateTime.UtcNow:HH:mm:ss.fff} {what}: {failure}");
                }
            }
        }
    }
}
