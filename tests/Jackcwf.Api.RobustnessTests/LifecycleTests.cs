using System.Diagnostics;
using System.Net;
using Jackcwf.Api.RobustnessTests.Infrastructure;

namespace Jackcwf.Api.RobustnessTests;

/// <summary>
/// The built binary as an operator runs it: SIGTERM and SIGKILL during a stream, invalid settings,
/// and the <c>healthcheck</c> sub-command.
/// </summary>
public sealed class LifecycleTests
{
    private static string Words(int count) => string.Join(' ', Enumerable.Range(1, count).Select(i => $"w{i}"));

    private static async Task<int> WaitForExitAsync(ApiProcess api, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (!api.HasExited)
        {
            Assert.True(clock.Elapsed < timeout, $"the service did not exit within {timeout}. Output:\n{api.Logs}");
            await Task.Delay(50);
        }
        return api.ExitCode ?? -1;
    }

    [Fact]
    public async Task Sigterm_during_a_stream_drains_then_stores_the_answer_interrupted_with_its_text()
    {
        // 1,000 chunks, 100 ms apart: about 100 s, far longer than drain plus graceful time, even when a
        // busy machine delays the test's reaction to the first deltas by many seconds.
        var content = Words(1000);
        await using var api = await Service.StartAsync(new Dictionary<string, string?>
        {
            ["DEMO_CHUNK_DELAY_MS"] = "100",
            // Three seconds leaves room to probe the drain window on a busy machine.
            ["SHUTDOWN_DRAIN_DELAY_SECONDS"] = "3",
            ["GRACEFUL_SHUTDOWN_TIMEOUT"] = "2",
        });
        using var user = await TestUser.SignUpAsync(api);
        var conversation = await user.CreateConversationAsync();
        await using var stream = await StreamWatcher.StartAsync(user.Client, conversation, content);
        await stream.WaitForDeltasAsync(5, TimeSpan.FromSeconds(20));

        Assert.True(Signals.Send(api.Pid, Signals.SigTerm));
        var signalled = Stopwatch.StartNew();
        // Fresh connections, as a load balancer's probes would open.
        using var probe = api.CreateClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.Zero });
        probe.DefaultRequestHeaders.Authorization = user.Client.DefaultRequestHeaders.Authorization;
        await SecretTests.WaitForStatusAsync(probe, "health/ready", HttpStatusCode.ServiceUnavailable, seconds: 3);
        using (var live = await probe.GetAsync("health/live", TestContext.Current.CancellationToken))
        using (var me = await probe.GetAsync("api/me", TestContext.Current.CancellationToken))
        using (var list = await probe.GetAsync("api/conversations", TestContext.Current.CancellationToken))
        {
            var during = signalled.Elapsed;
            Assert.Equal(HttpStatusCode.OK, live.StatusCode);
            Assert.Equal(HttpStatusCode.OK, me.StatusCode);
            Assert.Equal(HttpStatusCode.OK, list.StatusCode);
            Assert.True(during < TimeSpan.FromSeconds(3), $"the probes took {during} and may have left the drain window");
        }

        Assert.Equal(0, await WaitForExitAsync(api, TimeSpan.FromSeconds(30)));
        await stream.WaitForEndAsync(TimeSpan.FromSeconds(10));
        var received = stream.Text;
        Assert.NotEmpty(received);
        Assert.StartsWith(received, content, StringComparison.Ordinal);
        var assistant = stream.AssistantId ?? throw new InvalidOperationException("no start event");

        await api.RestartAsync(cancellationToken: TestContext.Current.CancellationToken);
        var stored = StreamWatcher.AssistantOf(await user.GetConversationAsync(conversation), assistant);
        var status = stored.GetProperty("status").GetString();
        var text = stored.GetProperty("content").GetString()!;
        Assert.True(status is "interrupted" or "complete", $"stored status {status}");
        Assert.StartsWith(text, content, StringComparison.Ordinal);
        Assert.StartsWith(received, text, StringComparison.Ordinal);
        if (status == "interrupted")
        {
            Assert.True(text.Length < content.Length, "an interrupted answer holds the whole text");
            var final = stream.Final;
            Assert.True(final is null || final.Event == "error", $"an interrupted answer ended with {final?.Event}");
        }
    }

    [Fact]
    public async Task Sigterm_with_enough_graceful_time_lets_the_stream_finish()
    {
        var content = Words(30); // about 3 s
        await using var api = await Service.StartAsync(new Dictionary<string, string?>
        {
            ["DEMO_CHUNK_DELAY_MS"] = "100",
            ["SHUTDOWN_DRAIN_DELAY_SECONDS"] = "1",
            ["GRACEFUL_SHUTDOWN_TIMEOUT"] = "30",
        });
        using var user = await TestUser.SignUpAsync(api);
        var conversation = await user.CreateConversationAsync();
        await using var stream = await StreamWatcher.StartAsync(user.Client, conversation, content);
        await stream.WaitForDeltasAsync(3, TimeSpan.FromSeconds(20));

        Assert.True(Signals.Send(api.Pid, Signals.SigTerm));
        await stream.WaitForEndAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(0, await WaitForExitAsync(api, TimeSpan.FromSeconds(30)));

        Assert.Equal("done", stream.Final?.Event);
        Assert.Equal(content, stream.Text);
        Assert.Equal("complete", stream.Final!.Json.GetProperty("status").GetString());

        await api.RestartAsync(cancellationToken: TestContext.Current.CancellationToken);
        var stored = StreamWatcher.AssistantOf(await user.GetConversationAsync(conversation), stream.AssistantId!.Value);
        Assert.Equal("complete", stored.GetProperty("status").GetString());
        Assert.Equal(content, stored.GetProperty("content").GetString());
    }

    [Fact]
    public async Task Kill_9_during_a_stream_leaves_the_answer_interrupted_with_its_checkpointed_text_within_the_lease()
    {
        var content = Words(1000); // about 100 s: the kill lands mid-answer even on a busy machine
        const int leaseSeconds = 3;
        await using var api = await Service.StartAsync(new Dictionary<string, string?>
        {
            ["DEMO_CHUNK_DELAY_MS"] = "100",
            ["Chat__LeaseSeconds"] = leaseSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Chat__CheckpointIntervalMs"] = "300",
        });
        using var user = await TestUser.SignUpAsync(api);
        var conversation = await user.CreateConversationAsync();
        Guid assistant;
        string received;
        string timeline;
        await using (var stream = await StreamWatcher.StartAsync(user.Client, conversation, content))
        {
            var streaming = Stopwatch.StartNew();
            await stream.WaitForDeltasAsync(15, TimeSpan.FromSeconds(20));
            var seen = (stream.DeltaCount, streaming.Elapsed);
            var pid = api.Pid;
            api.Kill();
            Assert.True(api.HasExited, "kill -9 did not stop the service");
            received = stream.Text;
            assistant = stream.AssistantId!.Value;
            timeline = $"pid {pid}: {seen.DeltaCount} deltas after {seen.Elapsed}, killed at {streaming.Elapsed} with {stream.DeltaCount} deltas";
        }
        var killed = Stopwatch.StartNew();

        await api.RestartAsync(cancellationToken: TestContext.Current.CancellationToken);
        var ready = Stopwatch.StartNew();
        // The lease lapses at most leaseSeconds after the kill; the restarted replica sweeps once a
        // second (a third of the lease) from the moment it is ready. Plus slack for a busy machine.
        const int slack = 5;
        string? status = null;
        string text = "";
        while (killed.Elapsed < TimeSpan.FromSeconds(leaseSeconds + 1 + slack) || ready.Elapsed < TimeSpan.FromSeconds(1 + slack))
        {
            var stored = StreamWatcher.AssistantOf(await user.GetConversationAsync(conversation), assistant);
            status = stored.GetProperty("status").GetString();
            text = stored.GetProperty("content").GetString()!;
            if (status != "streaming")
            {
                break;
            }
            await Task.Delay(200, TestContext.Current.CancellationToken);
        }
        Assert.True(status == "interrupted",
            $"status {status} {killed.Elapsed} after kill -9 (lease {leaseSeconds}s); stored {text.Length} of {content.Length} characters, the client had {received.Length}; {timeline}");
        Assert.NotEmpty(text);
        Assert.StartsWith(text, content, StringComparison.Ordinal);
        // Checkpoints come every 300 ms; the last one before the kill holds most of what the client saw.
        Assert.True(text.Length * 2 >= received.Length, $"only {text.Length} of {received.Length} streamed characters were checkpointed");
    }

    public static TheoryData<string, string> InvalidSettings => new()
    {
        { "GRACEFUL_SHUTDOWN_TIMEOUT", "soon" },
        { "PORT", "70000" },
        { "DATABASE_URL", "mysql://x" },
        { "ENABLE_MONITORING", "maybe" },
        { "MAX_MESSAGE_CHARS", "0" },
        { "OPENAI_BASE_URL", "ftp://example.test" },
        { "DATABASE_URL", "postgresql://u:p@127.0.0.1:5432/db?sslmode=sometimes" },
        { "DATABASE_URL", "postgresql://u:p@127.0.0.1:5432/db?no_such_option=1" },
        { "DATABASE_URL", "postgresql://u:p@127.0.0.1:5432,127.0.0.1:99999/db?target_session_attrs=read-write" },
        { "DATABASE_URL", "postgresql://u:p@h1:5432,,h3:5432/db" },
        { "DATABASE_URL", "postgresql://u:p@h1:5432,h2:5432/db?target_session_attrs=leader" },
        { "REDIS_URL", "redis+sentinel://127.0.0.1:26379,127.0.0.1:26380" },
        { "REDIS_URL", "redis+sentinel://127.0.0.1:notaport/mymaster" },
        { "FORWARDED_TRUSTED_NETWORKS", "10.0.0.0/8, the-proxy" },
        { "DATA_PROTECTION_KEY", "too-short" },
        { "AUTH_FAILED_SIGNINS_PER_IP", "0" },
    };

    [Theory]
    [MemberData(nameof(InvalidSettings))]
    public async Task Invalid_setting_stops_start_up_with_exit_code_2_naming_the_variable(string variable, string value)
    {
        var (code, stdout, stderr) = await Service.RunToExitAsync(new Dictionary<string, string?> { [variable] = value }, TimeSpan.FromSeconds(40));
        Assert.True(code == 2, $"exit code {code} for {variable}={value}\nstderr:\n{stderr}\nstdout:\n{Tail(stdout)}");
        Assert.Contains(variable, stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Healthcheck_command_exits_0_for_a_ready_service_and_1_for_a_closed_port()
    {
        await using var api = await Service.StartAsync();
        // Container runtimes retry a failed health check; so does this test, since the command gives the
        // service 5 s and this machine's other workloads can starve a single probe.
        var ok = await HealthcheckWithRetriesAsync(["healthcheck", new Uri(api.BaseUrl, "health/ready").ToString()], null);
        Assert.True(ok.ExitCode == 0, $"healthcheck exited {ok.ExitCode}: {ok.Output}");
        var closed = await Service.RunCommandAsync(["healthcheck", $"http://127.0.0.1:{Ports.Next()}/health/ready"]);
        Assert.True(closed.ExitCode == 1, $"healthcheck exited {closed.ExitCode}: {closed.Output}");
        // Without a URL it probes PORT on loopback.
        var byPort = await HealthcheckWithRetriesAsync(["healthcheck"], new Dictionary<string, string?> { ["PORT"] = api.Port.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        Assert.True(byPort.ExitCode == 0, $"healthcheck with PORT exited {byPort.ExitCode}: {byPort.Output}");
    }

    private static async Task<ApiCommandResult> HealthcheckWithRetriesAsync(IReadOnlyList<string> arguments, IReadOnlyDictionary<string, string?>? environment)
    {
        ApiCommandResult result = null!;
        for (var attempt = 0; attempt < 3; attempt++)
        {
            result = await Service.RunCommandAsync(arguments, environment);
            if (result.ExitCode == 0 || !result.Output.Contains("unreachable", StringComparison.Ordinal))
            {
                return result;
            }
        }
        return result;
    }

    [Fact]
    public async Task Start_up_and_graceful_shutdown_log_no_errors()
    {
        await using var api = await Service.StartAsync(new Dictionary<string, string?> { ["SHUTDOWN_DRAIN_DELAY_SECONDS"] = "1", ["GRACEFUL_SHUTDOWN_TIMEOUT"] = "1" });
        using var probe = api.CreateClient();
        Assert.True(Signals.Send(api.Pid, Signals.SigTerm));
        // A load balancer keeps probing readiness while the replica drains.
        await SecretTests.WaitForStatusAsync(probe, "health/ready", HttpStatusCode.ServiceUnavailable, seconds: 2);
        Assert.Equal(0, await WaitForExitAsync(api, TimeSpan.FromSeconds(30)));
        var errors = LogAssert.ErrorLines(api);
        Assert.True(errors.Count == 0, $"{errors.Count} error lines in a normal start and stop, e.g.:\n" + string.Join('\n', errors.Distinct().Take(5)));
    }

    private static string Tail(string s) => s.Length <= 2000 ? s : s[^2000..];
}
