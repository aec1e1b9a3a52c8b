using System.Text.Json.Nodes;
using Jackcwf.DeploymentTests.Infrastructure;

namespace Jackcwf.DeploymentTests;

/// <summary>The PrometheusRules on Kubernetes hold exactly the rules Prometheus loads on Compose.</summary>
public sealed class MonitoringRuleTests
{
    [Theory]
    [InlineData("alerts", "jackcwf-alerts")]
    [InlineData("recording", "jackcwf-recording-rules")]
    public async Task PrometheusRuleHoldsTheSameGroupsAsTheRuleFile(string ruleFile, string ruleName)
    {
        var source = Repo.PathOf("deployment", "monitoring", "prometheus", "rules", ruleFile + ".yml");
        Assert.True(File.Exists(source), $"{Path.GetRelativePath(Repo.Root, source)} is missing; the PrometheusRule is generated from it.");
        var expected = YamlJson.ParseObject(File.ReadAllText(source))["groups"];

        var rendered = YamlJson.ParseAll(await Kustomize.RenderAsync("medium"))
            .OfType<JsonObject>()
            .Single(o => (string?)o["kind"] == "PrometheusRule" && (string?)o["metadata"]!["name"] == ruleName);

        Assert.True(JsonNode.DeepEquals(expected, rendered["spec"]!["groups"]),
            $"PrometheusRule {ruleName} differs from {ruleFile}.yml: run deployment/kubernetes/generate.sh");
    }

    [Fact]
    public async Task ServiceMonitorScrapesTheMetricsPathAsTheJobTheAlertsExpect()
    {
        var objects = await Kustomize.LoadAsync("medium");
        var monitor = objects.OfType<ServiceMonitor>().Single();
        var service = objects.OfType<k8s.Models.V1Service>().Single(s => s.Metadata.Name == "jackcwf-backend-metrics");

        var endpoint = monitor.Spec!.Endpoints!.Single();
        Assert.Equal("/metrics", endpoint.Path);
        Assert.Equal(service.Spec.Ports.Single().Name, endpoint.Port);
        Assert.All(monitor.Spec.Selector!.MatchLabels, kv => Assert.Equal(kv.Value, service.Metadata.Labels[kv.Key]));
        // Prometheus Operator sets job to the value of the Service label named by jobLabel.
        Assert.Equal("jackcwf", service.Metadata.Labels[monitor.Spec.JobLabel!]);
        Assert.Contains("job=\"jackcwf\"", Repo.Read("deployment", "monitoring", "prometheus", "rules", "alerts.yml"));
    }

    [Fact]
    public async Task GeneratorCheckModeReportsNoDrift()
    {
        // generate.sh --check regenerates into a temporary folder and diffs; CI relies on it too.
        var result = await Tool.RunAsync("bash", [Repo.PathOf("deployment", "kubernetes", "generate.sh"), "--check"]);

        Assert.True(result.ExitCode == 0, result.Output);
    }
}
