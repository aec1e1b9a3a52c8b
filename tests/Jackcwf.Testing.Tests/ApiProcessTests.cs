using System.Net;

namespace Jackcwf.Testing.Tests;

public sealed class ApiProcessTests
{
    private static readonly string StubDll = Path.Combine(AppContext.BaseDirectory, "Jackcwf.Testing.StubService.dll");

    private static ApiProcessOptions Options(Dictionary<string, string?>? environment = null) => new()
    {
        DllPath = StubDll,
        Environment = environment ?? [],
        ReadyTimeout = TimeSpan.FromSeconds(60),
    };

    [Fact]
    public async Task StartedProcessIsReadyOnLoopbackWithDefaultsAndCapturedOutput()
    {
        await using var api = await ApiProcess.StartAsync(Options(new() { ["STUB_MARKER"] = "from-the-test" }), TestContext.Current.CancellationToken);
        using var client = api.CreateClient();

        Assert.Equal("127.0.0.1", api.BaseUrl.Host);
        Assert.InRange(api.Port, 1024, 32767);
        Assert.Equal("from-the-test", await client.GetStringAsync("env/STUB_MARKER", TestContext.Current.CancellationToken));
        Assert.Equal("json", await client.GetStringAsync("env/LOG_FORMAT", TestContext.Current.CancellationToken));
        Assert.Equal("0", await client.GetStringAsync("env/DOTNET_gcServer", TestContext.Current.CancellationToken));
        Assert.Equal(api.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture), await client.GetStringAsync("pid", TestContext.Current.CancellationToken));
        Assert.Equal(api.WorkingDirectory, await client.GetStringAsync("cwd", TestContext.Current.CancellationToken));
        Assert.StartsWith(Path.GetTempPath().TrimEnd('/'), api.WorkingDirectory);
        await api.WaitForLogAsync("stub: stderr is captured too", TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        Assert.Contains(api.LogLines, l => l.Contains($"listening on http://127.0.0.1:{api.Port}", StringComparison.Ordinal));
    }

    [Fact]
    public async Task StopSendsSigtermAndReturnsTheExitCode()
    {
        await using var api = await ApiProcess.StartAsync(Options(new() { ["STUB_EXIT_CODE"] = "7" }), TestContext.Current.CancellationToken);

        var exitCode = await api.StopAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(7, exitCode);
        Assert.True(api.HasExited);
        // The stub logs only when the host shuts down gracefully, which SIGKILL would not allow.
        Assert.Contains("stub: stopping", api.Logs);
    }

    [Fact]
    public async Task RestartKeepsPortAndWorkingDirectory()
    {
        await using var api = await ApiProcess.StartAsync(Options(), TestContext.Current.CancellationToken);
        var firstPid = api.Pid;
        var directory = api.WorkingDirectory;

        api.Kill();
        Assert.True(api.HasExited);
        await api.RestartAsync(cancellationToken: TestContext.Current.CancellationToken);

        Assert.NotEqual(firstPid, api.Pid);
        Assert.Equal(directory, api.WorkingDirectory);
        using var client = api.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("health/ready", TestContext.Current.CancellationToken)).StatusCode);
    }

    [Fact]
    public async Task ProcessThatExitsBeforeReadyFailsWithItsOutput()
    {
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            ApiProcess.StartAsync(Options(new() { ["STUB_FAIL_AT_START"] = "PORT must be a number" }), TestContext.Current.CancellationToken));

        Assert.Contains("exited with code 3", error.Message);
        Assert.Contains("Configuration error: PORT must be a number", error.Message);
    }

    [Fact]
    public async Task SubCommandRunsToCompletion()
    {
        var result = await ApiProcess.RunCommandAsync(["exit", "4"], Options(), cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(4, result.ExitCode);
        Assert.Contains("stub: command ran", result.Output);
    }

    [Fact]
    public async Task MissingServiceBuildFailsWithInstructions()
    {
        var error = await Assert.ThrowsAsync<FileNotFoundException>(() =>
            ApiProcess.StartAsync(new ApiProcessOptions { DllPath = "/nonexistent/Jackcwf.Api.dll" }, TestContext.Current.CancellationToken));

        Assert.Contains("./test.sh", error.Message);
        Assert.Contains("dotnet build -c Release", error.Message);
    }

    [Fact]
    public void RepoRootHoldsTheSolution() =>
        Assert.True(File.Exists(Path.Combine(RepoPaths.Root, "Jackcwf.slnx")));
}
