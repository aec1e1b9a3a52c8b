using System.Text.RegularExpressions;
using Jackcwf.MonitoringTests.Infrastructure;

namespace Jackcwf.MonitoringTests.Live;

/// <summary>Every metric name the alerts, recording rules and dashboards read exists in a real scrape of the service (or comes from a documented exporter).</summary>
[Collection(LiveStackCollection.Name)]
public sealed partial class MetricNameCrossCheckTests(LiveStackFixture stack)
{
    public static TheoryData<string> Sources => ["alerts.yml", "recording.yml", "dashboards"];

    [Theory]
    [MemberData(nameof(Sources))]
    public void EveryMetricNameUsedIsExportedByTheServiceOrADocumentedExporter(string source)
    {
        var used = UsedNames(source);
        Assert.NotEmpty(used);
        var exporters = MonitoringFiles.DocumentedExporterMetrics();
        var recorded = MonitoringFiles.RecordingRules.Select(r => r.Record!).ToHashSet(StringComparer.Ordinal);

        var unknown = used
            .Where(u => !stack.ScrapedSampleNames.Contains(u.Name) && !stack.ScrapedFamilies.Contains(u.Name)
                && !exporters.Contains(u.Name) && !recorded.Contains(u.Name))
            .GroupBy(u => u.Name)
            .Select(g => $"{g.Key} (used by {string.Join(", ", g.Select(u => u.Where).Distinct().Take(3))})")
            .ToList();

        Assert.True(unknown.Count == 0,
            $"{source} reads metrics that the service does not export and docs/metrics.md does not list under \"Metrics from exporters\":\n  "
            + string.Join("\n  ", unknown) + "\nScraped families:\n  " + string.Join("\n  ", stack.ScrapedFamilies.Order(StringComparer.Ordinal)));
    }

    [Fact]
    public void EveryPlatformMetricOfTheContractIsExported()
    {
        var documented = MonitoringFiles.DocumentedPlatformMetrics();
        Assert.True(documented.Count >= 20, $"docs/metrics.md lists only {documented.Count} platform metrics.");

        var missing = documented.Where(n => !stack.ScrapedFamilies.Contains(n) && !stack.ScrapedSampleNames.Contains(n)).Order(StringComparer.Ordinal).ToList();

        Assert.True(missing.Count == 0,
            "Platform metrics documented in docs/metrics.md but missing from /metrics after the test traffic:\n  " + string.Join("\n  ", missing)
            + "\nScraped jackcwf_ families:\n  " + string.Join("\n  ", stack.ScrapedFamilies.Where(f => f.StartsWith("jackcwf_", StringComparison.Ordinal)).Order(StringComparer.Ordinal)));
    }

    [Fact]
    public void PlatformMetricsCarryOnlyTheDocumentedLabelsAndValues()
    {
        var documented = MonitoringFiles.DocumentedPlatformLabels();
        var problems = new SortedSet<string>(StringComparer.Ordinal);
        foreach (Match sample in LabelledSample().Matches(stack.Scrape))
        {
            var family = BaseName(sample.Groups[1].Value, documented);
            if (family is null)
            {
                continue;
            }

            foreach (Match pair in LabelPair().Matches(sample.Groups[2].Value))
            {
                var (label, value) = (pair.Groups[1].Value, pair.Groups[2].Value);
                if (label is "otel_scope_name" or "le")
                {
                    continue;
                }

                if (!documented[family].TryGetValue(label, out var allowed))
                {
                    problems.Add($"{family} has the undocumented label {label}=\"{value}\"");
                }
                else if (allowed is not null && !allowed.Contains(value))
                {
                    problems.Add($"{family}{{{label}=\"{value}\"}}: docs/metrics.md allows only {string.Join(", ", allowed)}");
                }
            }
        }

        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    [Fact]
    public void DocumentedExporterMetricsAreNotExportedByTheServiceItself()
    {
        // A name in the exporter list that the service does export would hide a wrong name in a rule.
        var overlap = MonitoringFiles.DocumentedExporterMetrics()
            .Where(n => n != "up" && (stack.ScrapedFamilies.Contains(n) || stack.ScrapedSampleNames.Contains(n)))
            .ToList();

        Assert.True(overlap.Count == 0, "Listed as exporter metrics but exported by the service: " + string.Join(", ", overlap));
    }

    private static string? BaseName(string sample, IReadOnlyDictionary<string, Dictionary<string, HashSet<string>?>> documented)
    {
        if (documented.ContainsKey(sample))
        {
            return sample;
        }

        foreach (var suffix in new[] { "_bucket", "_sum", "_count" })
        {
            if (sample.EndsWith(suffix, StringComparison.Ordinal) && documented.ContainsKey(sample[..^suffix.Length]))
            {
                return sample[..^suffix.Length];
            }
        }

        return null;
    }

    [GeneratedRegex(@"^(jackcwf_[a-zA-Z0-9_]*)\{([^}]*)\}", RegexOptions.Multiline)]
    private static partial Regex LabelledSample();

    [GeneratedRegex(@"([a-zA-Z_][a-zA-Z0-9_]*)=""((?:[^""\\]|\\.)*)""")]
    private static partial Regex LabelPair();

    private static IReadOnlyList<(string Name, string Where)> UsedNames(string source)
    {
        IEnumerable<(string Expr, string Where)> exprs = source switch
        {
            "alerts.yml" => MonitoringFiles.Alerts.Select(a => (a.Expr, a.Alert!)),
            "recording.yml" => MonitoringFiles.RecordingRules.Select(r => (r.Expr, r.Record!)),
            _ => Dashboards.Files.SelectMany(Dashboards.Queries).Select(q => (PromQl.FromGrafana(q.Expr), $"{q.Dashboard} {q.Where}")),
        };
        return [.. exprs.SelectMany(e => PromQl.MetricNames(e.Expr).Select(n => (n, e.Where)))];
    }
}
