using System.Net;
using System.Text.RegularExpressions;
using Jackcwf.MonitoringTests.Infrastructure;
using Jackcwf.Testing;

namespace Jackcwf.MonitoringTests.Live;

/// <summary>jackcwf_draining during a graceful shutdown, and JackcwfReplicaRestarted after the replica comes back.</summary>
public sealed partial class ShutdownAndRestartTests
{
    [Fact]
    public async Task DrainingIsExportedDuringShutdownAndTheRestartFiresTheRestartAlert()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var api = await ApiProcess.StartAsync(new ApiProcessOptions
        {
            Environment = new Dictionary<string, string?>
            {
                ["DATABASE_URL"] = null,
                ["REDIS_URL"] = null,
                // Long enough to scrape during the drain, short enough for a quick test.
                ["SHUTDOWN_DRAIN_DELAY_SECONDS"] = "4",
                ["LOG_LEVEL"] = "Warning",
            },
        }, ct);
        await using var prometheus = await PrometheusServer.StartAsync($"127.0.0.1:{api.Port}", MonitoringFiles.RuleFiles);
        var firstStart = await prometheus.EventuallyAsync("max(jackcwf_process_start_time_seconds{job=\"jackcwf\"})", v => v > 0);
        Assert.True(firstStart > 0, "Prometheus never saw jackcwf_process_start_time_seconds.");
        using var http = new HttpClient { BaseAddress = api.BaseUrl, Timeout = TimeSpan.FromSeconds(5) };
        Assert.Equal("0", DrainingValue(await http.GetStringAsync("metrics", ct)));

        Signals.Send(api.Pid, Signals.SigTerm);

        // During the drain delay the replica still answers, says it is not ready, and exports draining 1
        // (the signal is handled asynchronously and the exporter may answer from its short scrape
        // cache, so poll within the delay).
        var readiness = HttpStatusCode.OK;
        var draining = "";
        for (var i = 0; i < 15 && (readiness != HttpStatusCode.ServiceUnavailable || draining != "1"); i++)
        {
            await Task.Delay(200, ct);
            using (var ready = await http.GetAsync("health/ready", ct))
            {
                readiness = ready.StatusCode;
            }

            draining = DrainingValue(await http.GetStringAsync("metrics", ct));
        }

        Assert.Equal(HttpStatusCode.ServiceUnavailable, readiness);
        Assert.Equal("1", draining);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!api.HasExited && DateTime.UtcNow < deadline)
        {
            await Task.Delay(200, ct);
        }

        Assert.True(api.HasExited, "The replica did not exit within 60 s of SIGTERM.");

        // Same address, new process: the restart alert (no for:) fires on the changed start time.
        await api.RestartAsync(cancellationToken: ct);
        var firing = await prometheus.EventuallyAsync(
            "count(ALERTS{alertname=\"JackcwfReplicaRestarted\", alertstate=\"firing\", job=\"jackcwf\"})", v => v == 1, TimeSpan.FromSeconds(30));
        var starts = await prometheus.QueryAsync("changes(jackcwf_process_start_time_seconds{job=\"jackcwf\"}[5m])");
        Assert.True(firing == 1, $"JackcwfReplicaRestarted is not firing after the restart; changes() = {starts.ToJsonString()}.");
        Assert.Empty(await prometheus.QueryAsync("ALERTS{alertname=\"JackcwfDrainingTooLong\"}"));
    }

    private static string DrainingValue(string scrape)
    {
        var match = DrainingLine().Match(scrape);
        Assert.True(match.Success, "jackcwf_draining is missing from /metrics.");
        return match.Groups[1].Value;
    }

    [GeneratedRegex(@"^jackcwf_draining(?:\{[^}]*\})? (\S+)", RegexOptions.Multiline)]
    private static partial Regex DrainingLine();
}
