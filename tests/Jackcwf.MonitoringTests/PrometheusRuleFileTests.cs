using Jackcwf.MonitoringTests.Infrastructure;

namespace Jackcwf.MonitoringTests;

/// <summary>promtool accepts the configuration and the rules, and every alert's unit test passes.</summary>
public sealed class PrometheusRuleFileTests
{
    [Fact]
    public async Task PromtoolAcceptsThePrometheusConfiguration()
    {
        var result = await Tool.RunAsync("promtool", ["check", "config", MonitoringFiles.PrometheusConfig]);

        Assert.True(result.ExitCode == 0, result.Describe());
        // check config also loads the rule files it names: both must be found.
        Assert.Contains("SUCCESS: 2 rule files found", result.Output);
    }

    [Theory]
    [InlineData("alerts.yml")]
    [InlineData("recording.yml")]
    public async Task PromtoolAcceptsTheRuleFile(string file)
    {
        var result = await Tool.RunAsync("promtool", ["check", "rules", Path.Combine(MonitoringFiles.RulesDirectory, file)]);

        Assert.True(result.ExitCode == 0, result.Describe());
    }

    [Fact]
    public async Task EveryAlertUnitTestPasses()
    {
        var result = await Tool.RunAsync("promtool", ["test", "rules", "alerts.test.yml"], MonitoringFiles.RulesDirectory);

        Assert.True(result.ExitCode == 0, result.Describe());
        Assert.Contains("SUCCESS", result.Output);
    }

    [Fact]
    public async Task PromtoolRejectsABrokenRuleFile()
    {
        // Guards the checks above: a rule file with invalid PromQL must make promtool fail.
        var broken = Path.Combine(Directory.CreateTempSubdirectory("jackcwf-rules-").FullName, "broken.yml");
        await File.WriteAllTextAsync(broken, "groups:\n  - name: broken\n    rules:\n      - alert: JackcwfBroken\n        expr: sum(rate(x[5m]) >\n", TestContext.Current.CancellationToken);
        try
        {
            var result = await Tool.RunAsync("promtool", ["check", "rules", broken]);

            Assert.NotEqual(0, result.ExitCode);
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(broken)!, recursive: true);
        }
    }
}
