using System.Diagnostics;
using System.Text;

namespace Jackcwf.Testing;

/// <summary>Runs a tool to completion and captures its output.</summary>
public static class ExternalCommand
{
    /// <summary>The full path of <paramref name="name"/> in a folder on PATH, or null when it is not installed.</summary>
    public static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, name))
            .FirstOrDefault(File.Exists);

    /// <summary>
    /// Runs <paramref name="file"/> and returns its exit code with stdout and stderr interleaved as printed;
    /// kills it (and throws <see cref="TimeoutException"/>) when it runs longer than <paramref name="timeout"/>.
    /// </summary>
    public static async Task<(int ExitCode, string Output)> RunAsync(
        string file, IEnumerable<string> arguments, TimeSpan timeout, CancellationToken cancellationToken = default, string? workingDirectory = null)
    {
        var (exitCode, output, _) = await RunCapturingAsync(file, arguments, timeout, cancellationToken, workingDirectory);
        return (exitCode, output);
    }

    /// <summary>
    /// Like <see cref="RunAsync"/>, and also returns stdout on its own: stdout and stderr arrive on separate pipes, so a
    /// warning on stderr can land before or after the stdout line it was printed next to in the interleaved text.
    /// </summary>
    public static async Task<(int ExitCode, string Output, string StandardOutput)> RunCapturingAsync(
        string file, IEnumerable<string> arguments, TimeSpan timeout, CancellationToken cancellationToken = default, string? workingDirectory = null)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (workingDirectory is not null)
        {
            start.WorkingDirectory = workingDirectory;
        }
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        var output = new StringBuilder();
        var standardOutput = new StringBuilder();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) =>
        {
            Append(output, e.Data);
            Append(standardOutput, e.Data);
        };
        process.ErrorDataReceived += (_, e) => Append(output, e.Data);
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"{file} could not be started ({e.Message}); is it installed?", e);
        }

        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', start.ArgumentList)} did not finish within {timeout}. Output:\n{Text(output)}");
        }

        return (process.ExitCode, Text(output), Text(standardOutput));
    }

    /// <summary>Like <see cref="RunAsync"/>, and throws with the output when the exit code is not 0.</summary>
    public static async Task<string> RunCheckedAsync(
        string file, IEnumerable<string> arguments, TimeSpan timeout, CancellationToken cancellationToken = default, string? workingDirectory = null)
    {
        var list = arguments.ToList();
        var (exitCode, output) = await RunAsync(file, list, timeout, cancellationToken, workingDirectory);
        return exitCode == 0
            ? output
            : throw new InvalidOperationException($"{file} {string.Join(' ', list)} failed with exit code {exitCode}:\n{output}");
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
