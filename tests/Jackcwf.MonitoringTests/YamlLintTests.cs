using Jackcwf.MonitoringTests.Infrastructure;

namespace Jackcwf.MonitoringTests;

public sealed class YamlLintTests
{
    [Fact]
    public async Task EveryMonitoringYamlFilePassesYamllintStrictly()
    {
        Assert.NotEmpty(MonitoringFiles.AllYamlFiles);

        var result = await Tool.RunAsync("yamllint", ["--strict", "-c", ".yamllint", "."], MonitoringFiles.Directory);

        Assert.True(result.ExitCode == 0, result.Describe());
    }
}
