using System.Diagnostics;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Jackcwf.Api.RobustnessTests.Infrastructure;

namespace Jackcwf.Api.RobustnessTests;

/// <summary>
/// The service as a newcomer meets it: a plain <c>dotnet publish</c> is a complete app, the first
/// log lines say where it listens and where the data is, and Ctrl+C stops a process that no load
/// balancer watches at once. Alone in its collection: the publish keeps both cores busy for a while,
/// which would squeeze the drain windows other classes measure.
/// </summary>
[Collection(nameof(FirstRunTests))]
public sealed partial class FirstRunTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Plain_dotnet_publish_output_serves_the_web_app()
    {
        // The web sources are made newer than the built UI, so publish must rebuild it (as the SPA
        // templates do) and put it into the output.
        File.SetLastWriteTimeUtc(Path.Combine(RepoPaths.Root, "web", "index.html"), DateTime.UtcNow);
        // A web change renames the fingerprinted assets: the project is evaluated with the old
        // names, which the web build then removes. This stands for such an old asset; the publish
        // must not look for it after the rebuild.
        var staleAsset = Path.Combine(RepoPaths.Root, "src", "Jackcwf.Api", "wwwroot", "assets", "index-stale0000.js");
        Directory.CreateDirectory(Path.GetDirectoryName(staleAsset)!);
        await File.WriteAllTextAsync(staleAsset, "// from an earlier web build\n", Ct);
        var output = Directory.CreateTempSubdirectory("jackcwf-publish-").FullName;
        try
        {
            var publish = await ExternalCommand.RunAsync(
                "dotnet",
                ["publish", Path.Combine(RepoPaths.Root, "src", "Jackcwf.Api"), "-c", "Release", "-o", output, "-nologo", "--no-restore"],
                TimeSpan.FromMinutes(8));
            Assert.True(publish.ExitCode == 0, publish.Output);
            Assert.Contains("Building the web app", publish.Output);

            await using var api = await ApiProcess.StartAsync(new ApiProcessOptions
            {
                Port = Ports.Next(),
                DllPath = Path.Combine(output, "Jackcwf.Api.dll"),
                ReadyTimeout = TimeSpan.FromSeconds(180),
            }, Ct);
            using var http = api.CreateClient();
            var index = await http.GetStringAsync("/", Ct);
            Assert.DoesNotContain("web app is not built", index);
            var script = ScriptSource().Match(index);
            Assert.True(script.Success, $"no script in the served page:\n{index}");
            using var asset = await http.GetAsync(script.Groups[1].Value, Ct);
            Assert.Equal(HttpStatusCode.OK, asset.StatusCode);
            Assert.Equal("text/javascript", asset.Content.Headers.ContentType?.MediaType);
            Assert.False(File.Exists(Path.Combine(output, "wwwroot", "assets", "index-stale0000.js")), "an asset of an earlier web build was published");
        }
        finally
        {
            File.Delete(staleAsset);
            Directory.Delete(output, recursive: true);
        }
    }

    [Fact]
    public async Task First_log_lines_say_where_it_listens_and_where_the_data_is_as_json_when_output_is_not_a_terminal()
    {
        await using var api = await Service.StartAsync(new Dictionary<string, string?> { ["LOG_FORMAT"] = null });

        var line = await WaitForLineAsync(api, "is listening on");
        using var json = JsonDocument.Parse(line);
        var message = json.RootElement.GetProperty("Message").GetString()!;
        Assert.Contains($"http://127.0.0.1:{api.Port}", message);
        Assert.Contains($"data: SQLite {Path.Combine(api.WorkingDirectory, "data", "jackcwf.db")}", message);
    }

    [Fact]
    public async Task Log_format_text_gives_one_readable_line_per_event()
    {
        await using var api = await Service.StartAsync(new Dictionary<string, string?> { ["LOG_FORMAT"] = "text" });

        var line = await WaitForLineAsync(api, "is listening on");
        Assert.False(line.TrimStart().StartsWith('{'), line);
        Assert.Matches(@"^\d\d:\d\d:\d\d\.\d{3} info: ", line);
    }

    [Fact]
    public async Task Ctrl_c_stops_at_once_when_no_load_balancer_watches_and_nothing_streams()
    {
        // A drain delay far longer than the test waits: it must not apply, since nothing probed readiness.
        await using var api = await Service.StartAsync(
            new Dictionary<string, string?> { ["SHUTDOWN_DRAIN_DELAY_SECONDS"] = "120" }, waitForReady: false);
        using var http = api.CreateClient();
        await WaitForLineAsync(api, "is listening on");
        using (var live = await http.GetAsync("health/live", Ct))
        {
            Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        }

        Assert.True(Signals.Send(api.Pid, Signals.SigInt));
        var exit = await WaitForExitAsync(api, TimeSpan.FromSeconds(60));

        Assert.Equal(0, exit);
        Assert.Contains("no drain delay", api.Logs);
    }

    [Fact]
    public async Task Once_readiness_was_probed_ctrl_c_keeps_the_drain_delay_for_the_balancer()
    {
        await using var api = await Service.StartAsync(new Dictionary<string, string?> { ["SHUTDOWN_DRAIN_DELAY_SECONDS"] = "120" });
        using var http = api.CreateClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.Zero });

        Assert.True(Signals.Send(api.Pid, Signals.SigInt));
        await SecretTests.WaitForStatusAsync(http, "health/ready", HttpStatusCode.ServiceUnavailable, seconds: 60);
        using var live = await http.GetAsync("health/live", Ct);

        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        Assert.False(api.HasExited);
        // The console logger writes from its own queue and the test reads the output asynchronously:
        // the line can arrive after readiness already answers 503, so it is waited for, not sampled.
        Assert.Contains("serving for 120s more", await WaitForLineAsync(api, "serving for 120s more"));
    }

    private static async Task<string> WaitForLineAsync(ApiProcess api, string text)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(120))
        {
            if (api.LogLines.FirstOrDefault(l => l.Contains(text, StringComparison.Ordinal)) is { } line)
            {
                return line;
            }
            Assert.False(api.HasExited, $"the service exited:\n{api.Logs}");
            await Task.Delay(50, Ct);
        }
        throw new TimeoutException($"no log line with \"{text}\":\n{api.Logs}");
    }

    private static async Task<int> WaitForExitAsync(ApiProcess api, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (!api.HasExited)
        {
            Assert.True(clock.Elapsed < timeout, $"the service did not exit within {timeout}. Output:\n{api.Logs}");
            await Task.Delay(50, Ct);
        }
        return api.ExitCode ?? -1;
    }

    [GeneratedRegex("<script[^>]+src=\"(/assets/[^\"]+\\.js)\"")]
    private static partial Regex ScriptSource();
}

[CollectionDefinition(nameof(FirstRunTests), DisableParallelization = true)]
public sealed class FirstRunTestsCollection;
