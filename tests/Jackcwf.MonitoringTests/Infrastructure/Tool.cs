using System.Diagnostics;
using System.Text;

namespace Jackcwf.MonitoringTests.Infrastructure;

/// <summary>Output of a finished command-line tool.</summary>
public sealed record ToolResult(int ExitCode, string Output, string CommandLine)
{
    /// <summary>A failure message that shows what ran and everything it printed.</summary>
    public string Describe() => $"`{CommandLine}` exited with {ExitCode}:\n{Output}";
}

/// <summary>Runs the monitoring tools (promtool, amtool, yamllint) that the test command installs from Debian.</summary>
public static class Tool
{
    /// <summary>Debian package that provides each tool (all listed in tests/apt-packages.txt).</summary>
    private static readonly Dictionary<string, string> Packages = new()
    {
        ["promtool"] = "prometheus",
        ["prometheus"] = "prometheus",
        ["amtool"] = "prometheus-alertmanager",
        ["prometheus-alertmanager"] = "prometheus-alertmanager",
        ["yamllint"] = "yamllint",
    };

    /// <summary>Absolute path of <paramref name="name"/> on PATH; fails with the package to install when it is missing.</summary>
    public static string Require(string name)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        var package = Packages.GetValueOrDefault(name, name);
        Assert.Fail($"{name} is not installed. Install the Debian package '{package}' (apt-get install -y {package}); it is listed in tests/apt-packages.txt, which the test command installs.");
        return name;
    }

    public static async Task<ToolResult> RunAsync(string name, IEnumerable<string> arguments, string? workingDirectory = null, TimeSpan? timeout = null)
    {
        var start = new ProcessStartInfo(Require(name))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? MonitoringFiles.Directory,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        var commandLine = name + " " + string.Join(' ', start.ArgumentList);
        var output = new StringBuilder();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => Append(output, e.Data);
        process.ErrorDataReceived += (_, e) => Append(output, e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(2));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"`{commandLine}` did not finish in time. Output so far:\n{Text(output)}");
        }

        // The asynchronous readers may still hold the last lines.
        process.WaitForExit();
        return new ToolResult(process.ExitCode, Text(output), commandLine);
    }

    private static void Append(StringBuilder output, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (output)
        {
            output.AppendLine(line);
        }
    }

    private static string Text(StringBuilder output)
    {
        lock (output)
        {
            return output.ToString();
        }
    }
}
