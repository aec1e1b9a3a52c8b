using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Jackcwf.MonitoringTests.Infrastructure;
using Jackcwf.Testing;

namespace Jackcwf.MonitoringTests;

/// <summary>Alertmanager accepts the configuration, routes by severity and inhibits as documented.</summary>
public sealed class AlertmanagerTests
{
    [Fact]
    public async Task AmtoolAcceptsTheConfiguration()
    {
        var result = await Tool.RunAsync("amtool", ["check-config", MonitoringFiles.AlertmanagerConfig]);

        Assert.True(result.ExitCode == 0, result.Describe());
    }

    [Theory]
    [InlineData("critical", "severity=critical")]
    [InlineData("warning", "severity=warning")]
    [InlineData("info", "severity=info")]
    [InlineData("watchdog", "alertname=JackcwfWatchdog", "severity=info")]
    [InlineData("warning", "alertname=SomethingUnexpected")]
    public async Task AlertReachesTheIntendedReceiver(string receiver, params string[] labels)
    {
        var result = await RouteAsync(receiver, labels);

        Assert.True(result.ExitCode == 0, result.Describe());
        // amtool prints the receiver on stdout and a warning about --config.file on stderr, in either order.
        Assert.Equal(receiver, result.StandardOutput.Trim().Split('\n')[^1].Trim());
    }

    [Fact]
    public async Task EveryAlertRuleIsRoutedToTheReceiverOfItsSeverity()
    {
        var failures = new List<string>();
        foreach (var alert in MonitoringFiles.Alerts.Where(a => a.Alert != "JackcwfWatchdog"))
        {
            var severity = alert.Labels["severity"];
            var result = await RouteAsync(severity, [$"alertname={alert.Alert}", $"severity={severity}", "job=jackcwf"]);
            if (result.ExitCode != 0)
            {
                failures.Add(result.Describe());
            }
        }

        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public async Task InhibitionRulesSilenceTheConsequencesOfAKnownCause()
    {
        var binary = Tool.Require("prometheus-alertmanager");
        var storage = Directory.CreateTempSubdirectory("jackcwf-alertmanager-");
        var port = FreePort.Get();
        var start = new ProcessStartInfo(binary)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var argument in new[]
                 {
                     $"--config.file={MonitoringFiles.AlertmanagerConfig}", $"--storage.path={storage.FullName}",
                     $"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
                 })
        {
            start.ArgumentList.Add(argument);
        }

        var log = new LogCapture();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { log.Add(e.Data); } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { log.Add(e.Data); } };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(10) };
            await WaitReadyAsync(http, process, log);

            var endsAt = DateTimeOffset.UtcNow.AddMinutes(10);
            JsonObject Alert(params (string Name, string Value)[] labels) => new()
            {
                ["labels"] = new JsonObject(labels.Select(l => KeyValuePair.Create(l.Name, (JsonNode?)l.Value))),
                ["annotations"] = new JsonObject { ["summary"] = "test" },
                ["endsAt"] = endsAt.ToString("O"),
            };
            var alerts = new JsonArray(
                Alert(("alertname", "JackcwfHighErrorRate"), ("severity", "critical"), ("job", "jackcwf")),
                Alert(("alertname", "JackcwfElevatedErrorRate"), ("severity", "warning"), ("job", "jackcwf")),
                Alert(("alertname", "JackcwfProviderDown"), ("severity", "critical"), ("job", "jackcwf"), ("provider", "openai")),
                Alert(("alertname", "JackcwfProviderHighErrorRate"), ("severity", "warning"), ("job", "jackcwf"), ("provider", "openai")),
                Alert(("alertname", "JackcwfProviderHighErrorRate"), ("severity", "warning"), ("job", "jackcwf"), ("provider", "anthropic")),
                Alert(("alertname", "JackcwfDiskSpaceLow"), ("severity", "warning"), ("instance", "node-1"), ("mountpoint", "/")),
                Alert(("alertname", "JackcwfRedisMemoryCritical"), ("severity", "critical"), ("job", "redis"), ("instance", "redis-1:6379")),
                Alert(("alertname", "JackcwfRedisMemoryHigh"), ("severity", "warning"), ("job", "redis"), ("instance", "redis-1:6379")),
                Alert(("alertname", "JackcwfRedisMemoryHigh"), ("severity", "warning"), ("job", "redis"), ("instance", "redis-2:6379")));
            using (var post = await http.PostAsJsonAsync("api/v2/alerts", alerts, TestContext.Current.CancellationToken))
            {
                Assert.True(post.IsSuccessStatusCode, $"POST /api/v2/alerts answered {(int)post.StatusCode}: {await post.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)}");
            }

            // The inhibitor learns about new alerts asynchronously: poll until the targets are suppressed.
            JsonArray states = [];
            string State(string alertname, string? provider = null, string? instance = null) =>
                states.Single(a => (string?)a!["labels"]!["alertname"] == alertname
                    && (provider is null || (string?)a!["labels"]!["provider"] == provider)
                    && (instance is null || (string?)a!["labels"]!["instance"] == instance))!
                    ["status"]!["state"]!.GetValue<string>();
            var deadline = DateTime.UtcNow.AddSeconds(15);
            do
            {
                states = await http.GetFromJsonAsync<JsonArray>("api/v2/alerts", TestContext.Current.CancellationToken) ?? [];
                if (states.Count == alerts.Count && State("JackcwfElevatedErrorRate") == "suppressed" && State("JackcwfProviderHighErrorRate", "openai") == "suppressed"
                    && State("JackcwfRedisMemoryHigh", instance: "redis-1:6379") == "suppressed")
                {
                    break;
                }

                await Task.Delay(250, TestContext.Current.CancellationToken);
            }
            while (DateTime.UtcNow < deadline);

            var report = states.ToJsonString(new JsonSerializerOptions { WriteIndented = true });

            Assert.True(State("JackcwfElevatedErrorRate") == "suppressed", "The warning twin should be inhibited by JackcwfHighErrorRate:\n" + report);
            Assert.True(State("JackcwfProviderHighErrorRate", "openai") == "suppressed", "OpenAI's error rate should be inhibited by its JackcwfProviderDown:\n" + report);
            Assert.True(State("JackcwfProviderHighErrorRate", "anthropic") == "active", "Another provider's alert must stay active:\n" + report);
            Assert.True(State("JackcwfHighErrorRate") == "active", report);
            Assert.True(State("JackcwfDiskSpaceLow") == "active", "Nothing inhibits a lone warning:\n" + report);
            Assert.True(State("JackcwfRedisMemoryHigh", instance: "redis-1:6379") == "suppressed", "The warning twin should be inhibited by JackcwfRedisMemoryCritical of the same Redis:\n" + report);
            Assert.True(State("JackcwfRedisMemoryHigh", instance: "redis-2:6379") == "active", "Another Redis' warning must stay active:\n" + report);
        }
        finally
        {
            process.Kill();
            await process.WaitForExitAsync(TestContext.Current.CancellationToken);
            storage.Delete(recursive: true);
        }
    }

    private static Task<ToolResult> RouteAsync(string receiver, IEnumerable<string> labels) =>
        Tool.RunAsync("amtool", ["config", "routes", "test", $"--config.file={MonitoringFiles.AlertmanagerConfig}", $"--verify.receivers={receiver}", .. labels]);

    private static async Task WaitReadyAsync(HttpClient http, Process process, LogCapture log)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            Assert.False(process.HasExited, "Alertmanager exited:\n" + log.Text);
            try
            {
                using var response = await http.GetAsync("-/ready");
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            await Task.Delay(100);
        }

        Assert.Fail("Alertmanager was not ready within 30 s:\n" + log.Text);
    }
}
