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
    private static readonly TimeSpan ScriptTimeout = TimeSpan.FromSeconds(150);

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
            ["HA_PG_PORT"] = "20190",
            ["HA_REDIS_PORT"] = "20191",
            ["HA_START_TIMEOUT"] = "100",
            ["JACKCWF_API_DLL"] = Scripts.ApiDll,
            ["JACKCWF_LB_DLL"] = Scripts.LoadBalancerDll,
            ["DATABASE_URL"] = null,
            ["REDIS_URL"] = null,
            // Long enough for the balancer's 2 x 2 s probes, short enough to keep the test brief.
            ["SHUTDOWN_DRAIN_DELAY_SECONDS"] = "6",
            ["GRACEFUL_SHUTDOWN_TIMEOUT"] = "20",
            ["DEMO_CHUNK_DELAY_MS"] = "20",
            ["LOG_FORMAT"] = "text",
        };
        var pids = new List<int>();
        try
        {
            var deploy = await Scripts.RunAsync(Scripts.DeployHa, ["--platform", "local", "--replicas", $"{Replicas}"], environment, ScriptTimeout);
            Log(deploy.Output);
            Assert.True(deploy.ExitCode == 0, $"deploy-ha.sh failed:\n{deploy.Output}");
            pids.AddRange(ProcessIds(haDir));
            Assert.Equal(Replicas + 4, pids.Count); // replicas, balancer, Redis, PostgreSQL

            var health = await Scripts.RunAsync(Scripts.HealthCheck, ["--platform", "local"], environment, TimeSpan.FromSeconds(30));
            Log(health.Output);
            Assert.True(health.ExitCode == 0, $"health-check.sh failed:\n{health.Output}");
            Assert.Equal(Replicas, health.Output.Split('\n').Count(l => l.Contains("OK   replica", StringComparison.Ordinal)));

            await using var load = await Load.StartAsync(new Uri($"http://127.0.0.1:{LbPort}/"));
            await Task.Delay(TimeSpan.FromSeconds(2), Ct);
            var restart = await Scripts.RunAsync(Scripts.DeployHa, ["--platform", "local", "--rolling-restart"], environment, ScriptTimeout);
            Log(restart.Output);
            await Task.Delay(TimeSpan.FromSeconds(2), Ct);
            var figures = await load.StopAsync();

            Assert.True(restart.ExitCode == 0, $"rolling restart failed:\n{restart.Output}");
            var retries = await load.RetriesAsync();
            Log($"rolling restart of {Replicas} replicas: {restart.Duration.TotalSeconds:F0} s; {figures}; balancer retries {retries}");
            Assert.True(figures.Failures.Count == 0, $"{figures}\n{string.Join('\n', figures.Failures.Take(20))}");
            Assert.True(figures.Chats >= 20, $"too little load to prove anything: {figures}");
            var newPids = ProcessIds(haDir).Except(pids).ToList();
            Assert.Equal(Replicas, newPids.Count); // every replica is a new process
            pids.AddRange(newPids);

            var down = await Scripts.RunAsync(Scripts.DeployHa, ["--platform", "local", "--down"], environment, ScriptTimeout);
            Log(down.Output);
            Assert.True(down.ExitCode == 0, $"--down failed:\n{down.Output}");
            Assert.DoesNotContain(pids, IsRunning);
            Assert.False(File.Exists(Path.Combine(haDir, "state.env")));
        }
        finally
        {
            // Whatever happened above, leave nothing running and nothing on disk.
            await Scripts.RunAsync(Scripts.DeployHa, ["--platform", "local", "--down", "--purge"], environment, ScriptTimeout);
            foreach (var pid in pids.Where(IsRunning))
            {
                Process.GetProcessById(pid).Kill(entireProcessTree: true);
            }
            if (Directory.Exists(haDir))
            {
                Directory.Delete(haDir, recursive: true);
            }
        }
    }

    /// <summary>PIDs of everything deploy-ha.sh started, from its state folder.</summary>
    private static IEnumerable<int> ProcessIds(string haDir)
    {
        var files = Directory.GetFiles(haDir, "*.pid").Append(Path.Combine(haDir, "postgres", "data", "postmaster.pid"));
        foreach (var file in files.Where(File.Exists))
        {
            if (int.TryParse(File.ReadLines(file).FirstOrDefault()?.Trim(), out var pid))
            {
                yield return pid;
            }
        }
    }

    private static bool IsRunning(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
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

            load._workers.Add(Task.Run(() => load.HealthLoopAsync()));
            load._workers.Add(Task.Run(() => load.HealthLoopAsync()));
            foreach (var streamed in new[] { false, true, false, true })
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
                await Task.Delay(20, CancellationToken.None);
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
