using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Jackcwf.MonitoringTests.Infrastructure;

namespace Jackcwf.MonitoringTests;

/// <summary>Grafana dashboards: valid JSON, PromQL that parses, only the provisioned datasource.</summary>
public sealed class DashboardTests
{
    public static TheoryData<string> DashboardFiles => [.. Dashboards.Files.Select(f => Path.GetFileName(f))];

    private static string PathOf(string file) => Path.Combine(MonitoringFiles.DashboardsDirectory, file);

    [Fact]
    public void TheThreeDashboardsExistWithUniqueUids()
    {
        var uids = Dashboards.Files.Select(f => (string?)Dashboards.Load(f)["uid"]).ToList();

        Assert.Equal(["jackcwf-llm", "jackcwf-overview", "jackcwf-replicas"], uids.Order(StringComparer.Ordinal));
    }

    [Theory]
    [MemberData(nameof(DashboardFiles))]
    public void DashboardIsValidJsonWithTitledPanelsThatAllQuery(string file)
    {
        using var document = JsonDocument.Parse(File.ReadAllText(PathOf(file)));
        var dashboard = Dashboards.Load(PathOf(file));

        Assert.False(string.IsNullOrWhiteSpace((string?)dashboard["title"]), $"{file} has no title.");
        var panels = Dashboards.Panels(dashboard).Where(p => (string?)p["type"] != "row").ToList();
        Assert.NotEmpty(panels);
        Assert.All(panels, p =>
        {
            Assert.False(string.IsNullOrWhiteSpace((string?)p["title"]), $"A panel of {file} has no title.");
            Assert.True(p["targets"]?.AsArray().Count > 0, $"Panel \"{p["title"]}\" of {file} has no query.");
        });
        var ids = panels.Select(p => (int?)p["id"]).ToList();
        Assert.Equal(ids.Count, ids.Distinct().Count());
    }

    [Theory]
    [MemberData(nameof(DashboardFiles))]
    public void EveryDatasourceReferenceIsTheProvisionedPrometheusUid(string file)
    {
        var uid = ProvisionedPrometheusUid();
        var references = Dashboards.DatasourceReferences(Dashboards.Load(PathOf(file))).ToList();

        Assert.NotEmpty(references);
        var wrong = references
            .Where(r => r.Value is not JsonObject o || (string?)o["uid"] != uid || (string?)o["type"] != "prometheus")
            .Select(r => $"{r.Path}: {r.Value?.ToJsonString() ?? "null"}")
            .ToList();
        Assert.True(wrong.Count == 0, $"{file} references datasources other than {{type: prometheus, uid: {uid}}}:\n" + string.Join("\n", wrong));
    }

    [Fact]
    public void TheDatasourceIsProvisionedWithAFixedUid()
    {
        Assert.Equal("prometheus", ProvisionedPrometheusUid());
    }

    [Fact]
    public async Task EveryDashboardQueryParsesAsPromQl()
    {
        var queries = Dashboards.Files.SelectMany(Dashboards.Queries).ToList();
        Assert.True(queries.Count > 30, $"Only {queries.Count} dashboard queries found.");

        // promtool has no "parse this expression" command: each query becomes a recording rule.
        var rules = new StringBuilder("groups:\n  - name: dashboard-queries\n    rules:\n");
        for (var i = 0; i < queries.Count; i++)
        {
            rules.Append($"      - record: dashboard:query:{i}\n        expr: {JsonSerializer.Serialize(PromQl.FromGrafana(queries[i].Expr))}\n");
        }

        var folder = Directory.CreateTempSubdirectory("jackcwf-dashboards-");
        try
        {
            var file = Path.Combine(folder.FullName, "dashboard-queries.yml");
            await File.WriteAllTextAsync(file, rules.ToString(), TestContext.Current.CancellationToken);

            var result = await Tool.RunAsync("promtool", ["check", "rules", file]);

            var index = string.Join("\n", queries.Select((q, i) => $"dashboard:query:{i} = {q.Dashboard} {q.Where}: {q.Expr}"));
            Assert.True(result.ExitCode == 0, result.Describe() + "\nQueries:\n" + index);
            Assert.Contains($"SUCCESS: {queries.Count} rules found", result.Output);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [Fact]
    public void TheOverviewShowsRequestLatencyP50P95AndP99()
    {
        var exprs = Dashboards.Queries(PathOf("jackcwf-overview.json")).Select(q => q.Expr).ToList();

        foreach (var quantile in new[] { "0.5", "0.95", "0.99" })
        {
            Assert.Contains(exprs, e => e.Contains($"histogram_quantile({quantile},", StringComparison.Ordinal)
                && e.Contains("http_server_request_duration_seconds_bucket", StringComparison.Ordinal));
        }
    }

    [Fact]
    public void TheLlmDashboardShowsCostTokensAndTimeToFirstToken()
    {
        var exprs = string.Join("\n", Dashboards.Queries(PathOf("jackcwf-llm.json")).Select(q => q.Expr));

        Assert.Contains("sum by (provider, model) (rate(jackcwf_llm_cost_usd_total", exprs);
        Assert.Contains("jackcwf_llm_tokens_total", exprs);
        Assert.Contains("jackcwf_time_to_first_token_seconds_bucket", exprs);
        Assert.Contains("jackcwf_provider_errors_total", exprs);
    }

    [Fact]
    public void TheReplicasDashboardShowsEachReplicaAndItsHealth()
    {
        var exprs = string.Join("\n", Dashboards.Queries(PathOf("jackcwf-replicas.json")).Select(q => q.Expr));

        Assert.Contains("up{job=\"$job\"", exprs);
        Assert.Contains("jackcwf_build_info", exprs);
        Assert.Contains("jackcwf_health_check_status", exprs);
        Assert.Contains("jackcwf_draining", exprs);
    }

    private static string ProvisionedPrometheusUid()
    {
        var text = File.ReadAllText(Path.Combine(MonitoringFiles.DatasourcesDirectory, "prometheus.yml"));
        var yaml = new YamlDotNet.Serialization.DeserializerBuilder().Build().Deserialize<Dictionary<string, object>>(text);
        var datasources = ((List<object>)yaml["datasources"]).Cast<Dictionary<object, object>>();
        var prometheus = datasources.Single(d => (string)d["type"] == "prometheus");
        return (string)prometheus["uid"];
    }
}
