using Jackcwf.DeploymentTests.Infrastructure;

namespace Jackcwf.DeploymentTests;

/// <summary>
/// The commands deployment/scripts/deploy-ha.sh runs for Kubernetes and Compose, recorded by stand-in
/// <c>kubectl</c> and <c>docker</c> executables placed first on PATH (no cluster or Docker daemon here).
/// Each stand-in logs its arguments and answers the script's checks (context, version, health).
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class DeployScriptTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("jackcwf-deploy-script-").FullName;

    private string Log => Path.Combine(_dir, "commands.log");

    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public DeployScriptTests()
    {
        var bin = Directory.CreateDirectory(Path.Combine(_dir, "bin")).FullName;
        Write(Path.Combine(bin, "kubectl"), """
            #!/bin/sh
            echo "kubectl $*" >> "$COMMAND_LOG"
            case "$*" in "config current-context") echo test-cluster ;; esac
            exit 0
            """);
        Write(Path.Combine(bin, "docker"), """
            #!/bin/sh
            echo "docker $*" >> "$COMMAND_LOG"
            case "$*" in *" ps -q web"*) exit 0 ;; "inspect "*) echo healthy ;; esac
            exit 0
            """);
        Directory.CreateDirectory(Path.Combine(_dir, "secrets"));
        foreach (var secret in new[] { "postgres_password.txt", "redis_password.txt", "traefik_users.htpasswd" })
        {
            File.WriteAllText(Path.Combine(_dir, "secrets", secret), "x");
        }
        File.WriteAllText(Path.Combine(_dir, ".env"), "REDIS_URL=sentinel-1:26379,sentinel-2:26379,sentinel-3:26379,serviceName=mymaster,password=x\n");
    }

    [Fact]
    public async Task KubernetesDeployDeletesTheFinishedMigrationJobBeforeApplyingTheNewRelease()
    {
        var commands = await RunAsync(["--platform", "kubernetes", "--overlay", "medium"], []);

        var delete = commands.FindIndex(c => c == "kubectl -n jackcwf delete job jackcwf-migrate --ignore-not-found --wait=true");
        var apply = commands.FindIndex(c => c.StartsWith("kubectl apply -k ", StringComparison.Ordinal) && c.EndsWith("/overlays/medium", StringComparison.Ordinal));
        var wait = commands.FindIndex(c => c.StartsWith("kubectl -n jackcwf wait --for=condition=complete job/jackcwf-migrate", StringComparison.Ordinal));
        var rollout = commands.FindIndex(c => c.StartsWith("kubectl -n jackcwf rollout status deployment/jackcwf-backend", StringComparison.Ordinal));
        Assert.True(delete >= 0 && apply > delete && wait > apply && rollout > wait, string.Join('\n', commands));
    }

    [Fact]
    public async Task ComposeDeployOfAReleasedImagePullsItAndNeverBuilds()
    {
        var commands = await RunAsync(["--platform", "docker-compose", "--replicas", "3"], new() { ["JACKCWF_IMAGE"] = "ghcr.io/jackcwf/jackcwf:1.2.3" });

        var up = commands.Single(c => c.Contains(" up -d", StringComparison.Ordinal));
        Assert.DoesNotContain("--build ", up + " ");
        Assert.Contains("--no-build", up);
        Assert.True(commands.FindIndex(c => c.EndsWith(" pull migrate web", StringComparison.Ordinal)) is var pull && pull >= 0 && pull < commands.IndexOf(up), string.Join('\n', commands));
    }

    [Fact]
    public async Task ComposeDeployFromTheCheckoutBuildsTheImage()
    {
        var commands = await RunAsync(["--platform", "docker-compose", "--replicas", "3"], new() { ["JACKCWF_IMAGE"] = null });

        var up = commands.Single(c => c.Contains(" up -d", StringComparison.Ordinal));
        Assert.Contains("--build", up);
        Assert.DoesNotContain(commands, c => c.Contains(" pull ", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ComposeDeployRefusesWithoutTheRedisPasswordAndSaysHowToCreateIt()
    {
        File.Delete(Path.Combine(_dir, "secrets", "redis_password.txt"));

        var result = await RunRawAsync(["--platform", "docker-compose"], []);

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("redis_password.txt is missing", result.Output);
        Assert.Contains("openssl rand -hex 32", result.Output);
        Assert.False(File.Exists(Log) && File.ReadAllText(Log).Contains(" up ", StringComparison.Ordinal), "nothing may start without the password");
    }

    private async Task<List<string>> RunAsync(string[] arguments, Dictionary<string, string?> environment)
    {
        var result = await RunRawAsync(arguments, environment);
        Assert.True(result.ExitCode == 0, result.Output);
        return File.ReadAllLines(Log).Select(l => l.Replace(Repo.Root, "<repo>", StringComparison.Ordinal)).ToList();
    }

    private Task<ToolResult> RunRawAsync(string[] arguments, Dictionary<string, string?> environment)
    {
        environment["PATH"] = Path.Combine(_dir, "bin") + Path.PathSeparator + Environment.GetEnvironmentVariable("PATH");
        environment["COMMAND_LOG"] = Log;
        environment["HA_ENV_FILE"] = Path.Combine(_dir, ".env");
        environment["HA_SECRETS_DIR"] = Path.Combine(_dir, "secrets");
        environment["HA_ROLLOUT_TIMEOUT"] = "5";
        return Tool.RunAsync("bash", [Repo.PathOf("deployment", "scripts", "deploy-ha.sh"), .. arguments], environment: environment, timeout: TimeSpan.FromMinutes(1));
    }

    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    private static void Write(string path, string text)
    {
        File.WriteAllText(path, text.ReplaceLineEndings("\n") + "\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
