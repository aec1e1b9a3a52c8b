namespace Jackcwf.LoadBalancer.Tests;

public sealed class ScriptTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task DeploymentScriptsPassShellcheck()
    {
        var shellcheck = Scripts.FindOnPath("shellcheck");
        Assert.True(shellcheck is not null, "shellcheck is not installed (apt-get install shellcheck; it is listed in tests/apt-packages.txt)");

        // -x follows deploy-ha.sh into the backup-local.sh it sources.
        var result = await Scripts.RunAsync(shellcheck, ["-x", Scripts.DeployHa, Scripts.HealthCheck, Path.Combine(Scripts.ScriptsDir, "backup-local.sh")], null, Timeout);

        Assert.True(result.ExitCode == 0, result.Output);
    }

    [Theory]
    [InlineData("deploy-ha.sh", "--rolling-restart")]
    [InlineData("health-check.sh", "--continuous")]
    public async Task HelpDescribesTheOptions(string script, string option)
    {
        var result = await Scripts.RunAsync(Path.Combine(Scripts.ScriptsDir, script), ["--help"], null, Timeout);

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("--platform", result.Output);
        Assert.Contains(option, result.Output);
    }

    [Theory]
    [InlineData("deploy-ha.sh")]
    [InlineData("health-check.sh")]
    public async Task AMissingOrUnknownPlatformFailsWithTheFix(string script)
    {
        var missing = await Scripts.RunAsync(Path.Combine(Scripts.ScriptsDir, script), [], null, Timeout);
        var unknown = await Scripts.RunAsync(Path.Combine(Scripts.ScriptsDir, script), ["--platform", "moon"], null, Timeout);

        Assert.NotEqual(0, missing.ExitCode);
        Assert.Contains("--platform is required", missing.Output);
        Assert.NotEqual(0, unknown.ExitCode);
        Assert.Contains("unknown platform 'moon'", unknown.Output);
        Assert.Contains("fix: use --platform local, docker-compose or kubernetes", unknown.Output);
    }

    [Fact]
    public async Task KubernetesWithoutAClusterContextFailsWithTheFix()
    {
        var emptyConfig = Path.Combine(Path.GetTempPath(), $"kubeconfig-{Guid.NewGuid():N}");
        await File.WriteAllTextAsync(emptyConfig, "apiVersion: v1\nkind: Config\n", TestContext.Current.CancellationToken);
        try
        {
            var result = await Scripts.RunAsync(Scripts.DeployHa, ["--platform", "kubernetes", "--rolling-restart"],
                new Dictionary<string, string?> { ["KUBECONFIG"] = emptyConfig }, Timeout);

            Assert.NotEqual(0, result.ExitCode);
            Assert.Contains("fix:", result.Output);
        }
        finally
        {
            File.Delete(emptyConfig);
        }
    }
}
