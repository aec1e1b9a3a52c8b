using Jackcwf.Testing;

namespace Jackcwf.MonitoringTests.Infrastructure;

/// <summary>Output of a finished command-line tool.</summary>
public sealed record ToolResult(int ExitCode, string Output, string StandardOutput, string CommandLine)
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
        if (ExternalCommand.FindOnPath(name) is { } path)
        {
            return path;
        }

        var package = Packages.GetValueOrDefault(name, name);
        Assert.Fail($"{name} is not installed. Install the Debian package '{package}' (apt-get install -y {package}); it is listed in tests/apt-packages.txt, which the test command installs.");
        return name;
    }

    public static async Task<ToolResult> RunAsync(string name, IEnumerable<string> arguments, string? workingDirectory = null, TimeSpan? timeout = null)
    {
        var list = arguments.ToList();
        var (exitCode, output, standardOutput) = await ExternalCommand.RunCapturingAsync(
            Require(name), list, timeout ?? TimeSpan.FromMinutes(2), workingDirectory: workingDirectory ?? MonitoringFiles.Directory);
        return new ToolResult(exitCode, output, standardOutput, name + " " + string.Join(' ', list));
    }
}
