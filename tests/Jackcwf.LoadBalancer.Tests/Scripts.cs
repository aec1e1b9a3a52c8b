using System.Diagnostics;
using System.Text;

namespace Jackcwf.LoadBalancer.Tests;

/// <summary>Finds the repository and runs its deployment scripts.</summary>
public static class Scripts
{
    public static string RepoRoot { get; } = FindRepoRoot();

    public static string ScriptsDir => Path.Combine(RepoRoot, "deployment", "scripts");

    public static string DeployHa => Path.Combine(ScriptsDir, "deploy-ha.sh");

    public static string HealthCheck => Path.Combine(ScriptsDir, "health-check.sh");

    /// <summary>The service binary: JACKCWF_API_DLL, or the Release build of src/Jackcwf.Api.</summary>
    public static string ApiDll =>
        Environment.GetEnvironmentVariable("JACKCWF_API_DLL") is { Length: > 0 } dll
            ? dll
            : Path.Combine(RepoRoot, "src", "Jackcwf.Api", "bin", "Release", "net10.0", "Jackcwf.Api.dll");

    /// <summary>The balancer built with these tests (same sources as src/Jackcwf.LoadBalancer).</summary>
    public static string LoadBalancerDll => Path.Combine(AppContext.BaseDirectory, "Jackcwf.LoadBalancer.dll");

    public static string? FindOnPath(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, tool))
            .FirstOrDefault(File.Exists);

    public sealed record Result(int ExitCode, string Output, TimeSpan Duration);

    /// <summary>Runs a program to completion (killed with its children after <paramref name="timeout"/>).</summary>
    public static async Task<Result> RunAsync(string file, IEnumerable<string> args, IDictionary<string, string?>? environment, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = RepoRoot,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        foreach (var (key, value) in environment ?? new Dictionary<string, string?>())
        {
            if (value is null)
            {
                start.Environment.Remove(key);
            }
            else
            {
                start.Environment[key] = value;
            }
        }

        var output = new StringBuilder();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (output) { output.AppendLine(e.Data); } } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (output) { output.AppendLine(e.Data); } } };
        var clock = Stopwatch.StartNew();
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None);
            lock (output)
            {
                output.AppendLine($"[killed after {timeout.TotalSeconds:F0} s]");
            }
            return new Result(-1, output.ToString(), clock.Elapsed);
        }
        lock (output)
        {
            return new Result(process.ExitCode, output.ToString(), clock.Elapsed);
        }
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Jackcwf.slnx")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException($"No Jackcwf.slnx above {AppContext.BaseDirectory}");
    }
}
