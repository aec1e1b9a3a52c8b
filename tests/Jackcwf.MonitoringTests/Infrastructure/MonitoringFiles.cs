using System.Text.RegularExpressions;
using Jackcwf.Testing;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace Jackcwf.MonitoringTests.Infrastructure;

/// <summary>The files under deployment/monitoring and the documents that go with them.</summary>
public static partial class MonitoringFiles
{
    /// <summary>Where every alert's runbook_url must point: this base plus <c>&lt;AlertName&gt;.md</c> (documented in deployment/monitoring/README.md).</summary>
    public const string RunbookBaseUrl = "https://github.com/jackcwf/jackcwf/blob/main/docs/runbooks/";

    private static readonly IDeserializer Yaml = new DeserializerBuilder()
        .WithNamingConvention(UnderscoredNamingConvention.Instance)
        .IgnoreUnmatchedProperties()
        .Build();

    public static string Directory => Path.Combine(RepoPaths.Root, "deployment", "monitoring");

    public static string RulesDirectory => Path.Combine(Directory, "prometheus", "rules");

    public static string AlertsFile => Path.Combine(RulesDirectory, "alerts.yml");

    public static string RecordingFile => Path.Combine(RulesDirectory, "recording.yml");

    public static string AlertTestsFile => Path.Combine(RulesDirectory, "alerts.test.yml");

    public static string PrometheusConfig => Path.Combine(Directory, "prometheus", "prometheus.yml");

    public static string AlertmanagerConfig => Path.Combine(Directory, "alertmanager", "alertmanager.yml");

    public static string DashboardsDirectory => Path.Combine(Directory, "grafana", "dashboards");

    public static string DatasourcesDirectory => Path.Combine(Directory, "grafana", "provisioning", "datasources");

    public static string RunbooksDirectory => Path.Combine(RepoPaths.Root, "docs", "runbooks");

    public static string MetricsDoc => Path.Combine(RepoPaths.Root, "docs", "metrics.md");

    /// <summary>The rule files Prometheus loads (the unit-test file is not one).</summary>
    public static IReadOnlyList<string> RuleFiles => [AlertsFile, RecordingFile];

    public static IReadOnlyList<string> AllYamlFiles =>
        [.. System.IO.Directory.EnumerateFiles(Directory, "*.*", SearchOption.AllDirectories)
            .Where(f => f.EndsWith(".yml", StringComparison.Ordinal) || f.EndsWith(".yaml", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)];

    public static RuleFile LoadRules(string path) =>
        Yaml.Deserialize<RuleFile>(File.ReadAllText(path)) ?? throw new InvalidOperationException($"{path} is empty.");

    public static IReadOnlyList<Rule> Alerts => [.. LoadRules(AlertsFile).Groups.SelectMany(g => g.Rules).Where(r => r.Alert is not null)];

    public static IReadOnlyList<Rule> RecordingRules =>
        [.. RuleFiles.SelectMany(f => LoadRules(f).Groups).SelectMany(g => g.Rules).Where(r => r.Record is not null)];

    public static AlertTestFile LoadAlertTests() =>
        Yaml.Deserialize<AlertTestFile>(File.ReadAllText(AlertTestsFile)) ?? throw new InvalidOperationException($"{AlertTestsFile} is empty.");

    /// <summary>
    /// Metric names docs/metrics.md lists under "Metrics from exporters": the only names a rule or
    /// dashboard may use without the service exporting them.
    /// </summary>
    public static IReadOnlySet<string> DocumentedExporterMetrics()
    {
        var text = File.ReadAllText(MetricsDoc);
        var start = text.IndexOf("\n## Metrics from exporters", StringComparison.Ordinal);
        Assert.True(start >= 0, "docs/metrics.md has no \"## Metrics from exporters\" section.");
        var end = text.IndexOf("\n## ", start + 1, StringComparison.Ordinal);
        var section = end < 0 ? text[start..] : text[start..end];
        return TableNameCell().Matches(section).Select(m => m.Groups[1].Value).ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>Metric names docs/metrics.md lists under "Platform metrics": the service's contract.</summary>
    public static IReadOnlySet<string> DocumentedPlatformMetrics()
    {
        var text = File.ReadAllText(MetricsDoc);
        var start = text.IndexOf("\n## Platform metrics", StringComparison.Ordinal);
        Assert.True(start >= 0, "docs/metrics.md has no \"## Platform metrics\" section.");
        var end = text.IndexOf("\n## ", start + 1, StringComparison.Ordinal);
        return TableNameCell().Matches(text[start..end]).Select(m => m.Groups[1].Value).ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>
    /// For each platform metric of docs/metrics.md, its documented labels and, where the table
    /// enumerates them (<c>`label` (`a`, `b`)</c>), the allowed values (null when free, like <c>model</c>).
    /// </summary>
    public static IReadOnlyDictionary<string, Dictionary<string, HashSet<string>?>> DocumentedPlatformLabels()
    {
        var text = File.ReadAllText(MetricsDoc);
        var start = text.IndexOf("\n## Platform metrics", StringComparison.Ordinal);
        var end = text.IndexOf("\n## ", start + 1, StringComparison.Ordinal);
        var result = new Dictionary<string, Dictionary<string, HashSet<string>?>>(StringComparer.Ordinal);
        foreach (var line in text[start..end].Split('\n').Where(l => TableNameCell().IsMatch(l)))
        {
            var cells = line.Split('|');
            var name = TableNameCell().Match(line).Groups[1].Value;
            var labels = new Dictionary<string, HashSet<string>?>(StringComparer.Ordinal);
            foreach (Match label in LabelWithValues().Matches(cells[3]))
            {
                labels[label.Groups[1].Value] = label.Groups[2].Success
                    ? Backticked().Matches(label.Groups[2].Value).Select(v => v.Groups[1].Value).ToHashSet(StringComparer.Ordinal)
                    : null;
            }

            result[name] = labels;
        }

        return result;
    }

    public static string Relative(string path) => Path.GetRelativePath(RepoPaths.Root, path);

    [GeneratedRegex(@"^\| `([a-zA-Z_:][a-zA-Z0-9_:]*)`", RegexOptions.Multiline)]
    private static partial Regex TableNameCell();

    // `label` optionally followed by its values in parentheses: `status_class` (`4xx`, `5xx`).
    [GeneratedRegex(@"`([a-z_]+)`(?:\s*\(([^)]*)\))?")]
    private static partial Regex LabelWithValues();

    [GeneratedRegex("`([^`]+)`")]
    private static partial Regex Backticked();
}

public sealed class RuleFile
{
    public List<RuleGroup> Groups { get; set; } = [];
}

public sealed class RuleGroup
{
    public string Name { get; set; } = "";

    public List<Rule> Rules { get; set; } = [];
}

public sealed class Rule
{
    public string? Alert { get; set; }

    public string? Record { get; set; }

    public string Expr { get; set; } = "";

    public string? For { get; set; }

    public Dictionary<string, string> Labels { get; set; } = [];

    public Dictionary<string, string> Annotations { get; set; } = [];
}

public sealed class AlertTestFile
{
    public List<string> RuleFiles { get; set; } = [];

    public List<AlertUnitTest> Tests { get; set; } = [];
}

public sealed class AlertUnitTest
{
    public string? Name { get; set; }

    public List<AlertRuleTestCase> AlertRuleTest { get; set; } = [];

    public List<PromqlExprTestCase> PromqlExprTest { get; set; } = [];
}

public sealed class AlertRuleTestCase
{
    public string EvalTime { get; set; } = "";

    public string Alertname { get; set; } = "";

    public List<ExpectedAlert> ExpAlerts { get; set; } = [];
}

public sealed class ExpectedAlert
{
    public Dictionary<string, string> ExpLabels { get; set; } = [];

    public Dictionary<string, string> ExpAnnotations { get; set; } = [];
}

public sealed class PromqlExprTestCase
{
    public string Expr { get; set; } = "";

    public string EvalTime { get; set; } = "";
}
