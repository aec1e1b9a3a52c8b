using System.Diagnostics;

namespace Jackcwf.Api.RobustnessTests.Infrastructure;

/// <summary>Starts the built service (see <see cref="ApiProcess"/>) with the settings these tests need.</summary>
internal static class Service
{
    public static Task<ApiProcess> StartAsync(
        IReadOnlyDictionary<string, string?>? environment = null,
        bool waitForReady = true,
        string? workingDirectory = null,
        int port = 0) =>
        ApiProcess.StartAsync(new ApiProcessOptions
        {
            Port = port == 0 ? Ports.Next() : port,
            Environment = WithDefaults(environment),
            WaitForReady = waitForReady,
            WorkingDirectory = workingDirectory,
            // Generous: several services start at once, on 2 cores shared with other test suites.
            ReadyTimeout = TimeSpan.FromSeconds(180),
        });

    /// <summary>Runs a sub-command (<c>migrate</c>, <c>healthcheck url</c>) to completion.</summary>
    public static Task<ApiCommandResult> RunCommandAsync(IReadOnlyList<string> arguments, IReadOnlyDictionary<string, string?>? environment = null) =>
        ApiProcess.RunCommandAsync(arguments, new ApiProcessOptions { Port = Ports.Next(), Environment = WithDefaults(environment) }, TimeSpan.FromSeconds(180));

    /// <summary>
    /// Runs the service with <paramref name="environment"/> and returns its exit code with stdout and
    /// stderr kept apart (start-up errors must go to stderr). A service that keeps running is killed
    /// after <paramref name="timeout"/> and reported as exit code -1.
    /// </summary>
    public static async Task<(int ExitCode, string StdOut, string StdErr)> RunToExitAsync(
        IReadOnlyDictionary<string, string?> environment, TimeSpan timeout)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Directory.CreateTempSubdirectory("jackcwf-robust-").FullName,
        };
        start.ArgumentList.Add(RepoPaths.ApiDll);
        start.Environment["ASPNETCORE_URLS"] = $"http://127.0.0.1:{Ports.Next()}";
        start.Environment["DOTNET_gcServer"] = "0";
        start.Environment["LOG_FORMAT"] = "json";
        start.Environment["DATA_PROTECTION_KEY"] = ApiProcess.TestDataProtectionKey;
        foreach (var (k, v) in environment)
        {
            if (v is null)
            {
                start.Environment.Remove(k);
            }
            else
            {
                start.Environment[k] = v;
            }
        }
        using var process = Process.Start(start) ?? throw new InvalidOperationException("dotnet could not be started.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        var code = -1;
        try
        {
            await process.WaitForExitAsync(cts.Token);
            code = process.ExitCode;
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
        try
        {
            Directory.Delete(start.WorkingDirectory, recursive: true);
        }
        catch (IOException)
        {
            // Left to the OS temp cleaner.
        }
        return (code, await stdout, await stderr);
    }

    private static Dictionary<string, string?> WithDefaults(IReadOnlyDictionary<string, string?>? environment)
    {
        // Inherited settings of the machine must not change what these tests observe.
        var env = new Dictionary<string, string?>
        {
            ["DATABASE_URL"] = null,
            ["REDIS_URL"] = null,
            ["OPENAI_API_KEY"] = null,
            ["ANTHROPIC_API_KEY"] = null,
            ["OLLAMA_BASE_URL"] = null,
            ["PORT"] = null,
            ["ENABLE_MONITORING"] = "false",
            // These tests send many requests as one user; the limits have their own tests.
            ["RATE_LIMIT_USER_PER_MINUTE"] = "1000000",
            ["RATE_LIMIT_KEY_PER_MINUTE"] = "1000000",
            ["MAX_CONCURRENT_GENERATIONS"] = "1000",
        };
        foreach (var (k, v) in environment ?? new Dictionary<string, string?>())
        {
            env[k] = v;
        }
        return env;
    }
}
