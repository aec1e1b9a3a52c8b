using System.Text.RegularExpressions;
using Jackcwf.MonitoringTests.Infrastructure;

namespace Jackcwf.MonitoringTests;

/// <summary>The alert rules follow the monitoring-mixin conventions and every alert is unit tested and documented.</summary>
public sealed partial class AlertRuleConventionTests
{
    private static readonly string[] Severities = ["critical", "warning", "info"];

    private static readonly IReadOnlyList<Rule> Alerts = MonitoringFiles.Alerts;

    public static TheoryData<string> AlertNames => [.. Alerts.Select(a => a.Alert!)];

    private static Rule AlertNamed(string name) => Alerts.Single(a => a.Alert == name);

    [Fact]
    public void ThereAreAtLeast25UniquelyNamedAlerts()
    {
        Assert.True(Alerts.Count >= 25, $"alerts.yml has {Alerts.Count} alerts; the seed promises 25 or more.");
        var duplicates = Alerts.GroupBy(a => a.Alert).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        Assert.True(duplicates.Count == 0, "Duplicate alert names: " + string.Join(", ", duplicates));
    }

    [Fact]
    public void TheWatchdogAlwaysFires()
    {
        var watchdog = AlertNamed("JackcwfWatchdog");

        Assert.Equal("vector(1)", watchdog.Expr.Trim());
        Assert.Null(watchdog.For);
    }

    [Theory]
    [MemberData(nameof(AlertNames))]
    public void AlertIsNamedInCamelCaseWithTheJackcwfPrefix(string alert) =>
        Assert.Matches(CamelCaseName(), alert);

    [Theory]
    [MemberData(nameof(AlertNames))]
    public void AlertHasASeverityOfCriticalWarningOrInfo(string alert)
    {
        var rule = AlertNamed(alert);

        Assert.True(rule.Labels.TryGetValue("severity", out var severity), $"{alert} has no severity label.");
        Assert.Contains(severity, Severities);
    }

    [Theory]
    [MemberData(nameof(AlertNames))]
    public void AlertHasAStaticSummaryATemplatedDescriptionAndItsRunbookUrl(string alert)
    {
        var annotations = AlertNamed(alert).Annotations;

        Assert.True(annotations.TryGetValue("summary", out var summary) && summary.Length > 0, $"{alert} has no summary.");
        Assert.DoesNotContain("{{", summary);
        Assert.True(annotations.TryGetValue("description", out var description) && description.Length > 0, $"{alert} has no description.");
        if (alert != "JackcwfWatchdog")
        {
            Assert.Contains("{{", description);
        }

        Assert.True(annotations.TryGetValue("runbook_url", out var url), $"{alert} has no runbook_url.");
        Assert.Equal(MonitoringFiles.RunbookBaseUrl + alert + ".md", url);
    }

    [Theory]
    [MemberData(nameof(AlertNames))]
    public void AlertHasARunbookThatSaysWhatItMeansHowToCheckAndHowToFix(string alert)
    {
        var path = Path.Combine(MonitoringFiles.RunbooksDirectory, alert + ".md");
        Assert.True(File.Exists(path), $"The runbook {MonitoringFiles.Relative(path)} of {alert} does not exist.");

        var text = File.ReadAllText(path);
        Assert.StartsWith("# " + alert, text);
        Assert.Contains("## What it means", text);
        Assert.Contains("## How to check", text);
        Assert.Contains("## How to fix", text);
    }

    [Fact]
    public void EveryRunbookBelongsToAnAlert()
    {
        var names = Alerts.Select(a => a.Alert!).ToHashSet();
        var orphans = Directory.EnumerateFiles(MonitoringFiles.RunbooksDirectory, "*.md")
            .Select(Path.GetFileNameWithoutExtension)
            .Where(n => !names.Contains(n!))
            .ToList();

        Assert.True(orphans.Count == 0, "Runbooks without an alert: " + string.Join(", ", orphans));
    }

    [Theory]
    [MemberData(nameof(AlertNames))]
    public void AlertHasAUnitTestThatSeesItFireWithItsLabelsAndAnnotations(string alert)
    {
        var rule = AlertNamed(alert);
        var firing = MonitoringFiles.LoadAlertTests().Tests
            .SelectMany(t => t.AlertRuleTest)
            .Where(c => c.Alertname == alert)
            .SelectMany(c => c.ExpAlerts)
            .ToList();

        Assert.True(firing.Count > 0, $"alerts.test.yml never expects {alert} to fire.");
        Assert.All(firing, expected =>
        {
            Assert.Equal(rule.Labels["severity"], expected.ExpLabels.GetValueOrDefault("severity"));
            Assert.Equal(rule.Annotations["summary"], expected.ExpAnnotations.GetValueOrDefault("summary"));
            Assert.Equal(rule.Annotations["runbook_url"], expected.ExpAnnotations.GetValueOrDefault("runbook_url"));
            Assert.False(string.IsNullOrWhiteSpace(expected.ExpAnnotations.GetValueOrDefault("description")), $"A test of {alert} does not check the rendered description.");
        });
    }

    [Theory]
    [MemberData(nameof(AlertNames))]
    public void AlertWithAForDurationIsTestedPendingButQuietOneMinuteBeforeItFires(string alert)
    {
        var rule = AlertNamed(alert);
        if (rule.For is null)
        {
            // Fires at once (the watchdog, restarts): its unit test checks the firing case only.
            return;
        }

        var tests = MonitoringFiles.LoadAlertTests().Tests.Where(t => t.AlertRuleTest.Any(c => c.Alertname == alert)).ToList();
        var boundaryTested = tests.Any(t =>
        {
            var cases = t.AlertRuleTest.Where(c => c.Alertname == alert).ToList();
            return cases.Any(quiet => quiet.ExpAlerts.Count == 0
                && cases.Any(fire => fire.ExpAlerts.Count > 0 && Minutes(fire.EvalTime) - Minutes(quiet.EvalTime) == 1)
                && t.PromqlExprTest.Any(p => p.Expr.Contains($"alertname=\"{alert}\"", StringComparison.Ordinal) && Minutes(p.EvalTime) == Minutes(quiet.EvalTime)));
        });

        Assert.True(boundaryTested,
            $"alerts.test.yml must check {alert} quiet one minute before it fires, and pending (ALERTS) at that time, so that its for: {rule.For} is exercised.");
    }

    [Fact]
    public void AlertsReadOnlyRecordedSeriesThatTheRecordingRulesDefine()
    {
        var recorded = MonitoringFiles.RecordingRules.Select(r => r.Record!).ToHashSet();
        var missing = Alerts.SelectMany(a => PromQl.MetricNames(a.Expr).Select(n => (a.Alert, n)))
            .Where(x => x.n.Contains(':', StringComparison.Ordinal) && !recorded.Contains(x.n))
            .Select(x => $"{x.Alert} reads {x.n}")
            .ToList();

        Assert.True(missing.Count == 0, string.Join("\n", missing));
    }

    [Fact]
    public void UnitTestsLoadBothRuleFilesAndEvaluateRecordingRulesFirst()
    {
        var file = MonitoringFiles.LoadAlertTests();

        Assert.Equal(["recording.yml", "alerts.yml"], file.RuleFiles);
        var text = File.ReadAllText(MonitoringFiles.AlertTestsFile);
        var groups = MonitoringFiles.RuleFiles.SelectMany(f => MonitoringFiles.LoadRules(f).Groups).Select(g => g.Name).ToList();
        // promtool evaluates groups missing from group_eval_order in random order, which makes
        // alerts on recorded series flaky: every group must be listed.
        Assert.All(groups, g => Assert.Contains("  - " + g + "\n", text));
    }

    private static int Minutes(string duration)
    {
        var match = DurationPattern().Match(duration);
        Assert.True(match.Success, $"Unexpected eval_time '{duration}'.");
        var hours = match.Groups[1].Success ? int.Parse(match.Groups[1].Value) : 0;
        var minutes = match.Groups[2].Success ? int.Parse(match.Groups[2].Value) : 0;
        return (hours * 60) + minutes;
    }

    [GeneratedRegex("^Jackcwf[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)*$")]
    private static partial Regex CamelCaseName();

    [GeneratedRegex(@"^(?:(\d+)h)?(?:(\d+)m)?(?:0s)?$")]
    private static partial Regex DurationPattern();
}
