using System.Text.RegularExpressions;

namespace Jackcwf.DeploymentTests.Infrastructure;

/// <summary>The environment variables documented in docs/configuration.md (first column of its tables).</summary>
public static partial class ConfigurationContract
{
    public static IReadOnlySet<string> Variables { get; } = Load();

    /// <summary>Defaults from the documentation's tables, for settings a manifest leaves unset.</summary>
    public static int DefaultSeconds(string variable) => variable switch
    {
        "SHUTDOWN_DRAIN_DELAY_SECONDS" => 5,
        "GRACEFUL_SHUTDOWN_TIMEOUT" => 30,
        _ => throw new ArgumentOutOfRangeException(nameof(variable)),
    };

    private static HashSet<string> Load()
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var line in Repo.Read("docs", "configuration.md").Split('\n'))
        {
            if (!line.StartsWith("| `", StringComparison.Ordinal)) continue;
            var firstCell = line.Split('|', StringSplitOptions.TrimEntries)[1];
            foreach (Match m in VariableName().Matches(firstCell)) names.Add(m.Groups[1].Value);
        }
        Assert.True(names.Count > 10, "docs/configuration.md should list the service's environment variables in tables.");
        return names;
    }

    [GeneratedRegex("`([A-Z][A-Z0-9_]*)`")]
    private static partial Regex VariableName();
}
