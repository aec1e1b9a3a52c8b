using Jackcwf.DeploymentTests.Infrastructure;

namespace Jackcwf.DeploymentTests;

/// <summary>yamllint on every deployment YAML file and workflow; shellcheck on every shell script of the repository.</summary>
public sealed class LintTests
{
    private static readonly string[] YamlTargets =
    [
        ".github/workflows", "docker-compose.yml", "deployment/docker-compose.ha.yml", "deployment/traefik", "deployment/kubernetes",
    ];

    [Fact]
    public async Task DeploymentYamlAndWorkflowsPassYamllint()
    {
        var yamllint = Tool.Require("yamllint", "install the Debian package yamllint (tests/apt-packages.txt; ./test.sh installs it)");

        var result = await Tool.RunAsync(yamllint, ["-f", "parsable", "-c", "tests/Jackcwf.DeploymentTests/yamllint.yml", .. YamlTargets], timeout: TimeSpan.FromMinutes(2));

        Assert.True(result.ExitCode == 0, result.Output);
    }

    [Fact]
    public async Task YamllintReportsABrokenFile()
    {
        var yamllint = Tool.Require("yamllint", "install the Debian package yamllint (tests/apt-packages.txt; ./test.sh installs it)");
        var file = Path.Combine(Path.GetTempPath(), $"jackcwf-yamllint-{Guid.NewGuid():N}.yml");
        await File.WriteAllTextAsync(file, "services:\n  web:\n    image: a\n    image: b\n", TestContext.Current.CancellationToken);
        try
        {
            var result = await Tool.RunAsync(yamllint, ["-f", "parsable", "-c", "tests/Jackcwf.DeploymentTests/yamllint.yml", file]);

            Assert.NotEqual(0, result.ExitCode);
            Assert.Contains("key-duplicates", result.Output);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task EveryShellScriptInTheRepositoryPassesShellcheck()
    {
        var shellcheck = Tool.Require("shellcheck", "install the Debian package shellcheck (tests/apt-packages.txt; ./test.sh installs it)");
        var scripts = Repo.FilesWithExtension(".sh").Select(f => Path.GetRelativePath(Repo.Root, f)).Order().ToList();

        Assert.Contains(Path.Combine("deployment", "kubernetes", "generate.sh"), scripts);
        var result = await Tool.RunAsync(shellcheck, ["--format=gcc", .. scripts], timeout: TimeSpan.FromMinutes(3));

        Assert.True(result.ExitCode == 0, $"shellcheck findings in {scripts.Count} scripts:\n{result.Output}");
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void DeploymentScriptsAreExecutable()
    {
        var scripts = new[] { "deployment/kubernetes/generate.sh" }.Concat(
            Directory.Exists(Repo.PathOf("deployment", "scripts"))
                ? Directory.EnumerateFiles(Repo.PathOf("deployment", "scripts"), "*.sh").Select(f => Path.GetRelativePath(Repo.Root, f))
                : []);

        Assert.All(scripts, s => Assert.True(
            (File.GetUnixFileMode(Repo.PathOf(s.Split('/', '\\'))) & UnixFileMode.UserExecute) != 0, $"{s} is not executable"));
    }
}
