using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Jackcwf.MonitoringTests.Infrastructure;
using Jackcwf.Testing;
using Json.Schema;

namespace Jackcwf.MonitoringTests;

/// <summary>docker-compose.monitoring.yml, checked without a Docker engine: schema, ports, mounts and its links to the service's Compose files.</summary>
public sealed class ComposeFileTests
{
    private static readonly string ComposeFile = Path.Combine(MonitoringFiles.Directory, "docker-compose.monitoring.yml");

    private static JsonObject Compose => YamlJson.ParseFile(ComposeFile);

    private static JsonObject Service(string name) =>
        Compose["services"]?[name]?.AsObject() ?? throw new InvalidOperationException($"docker-compose.monitoring.yml has no service {name}.");

    [Fact]
    public void ComposeFileMatchesTheComposeSpecificationSchema()
    {
        // The Compose Specification schema vendored once in the repository (used by the deployment tests too).
        var schemaPath = Path.Combine(RepoPaths.Root, "tests", "Jackcwf.DeploymentTests", "schemas", "compose-spec.json");
        Assert.True(File.Exists(schemaPath), $"{MonitoringFiles.Relative(schemaPath)} is missing.");
        var node = JsonNode.Parse(File.ReadAllText(schemaPath))!.AsObject();
        // The file declares draft-07 as "https://json-schema.org/draft-07/schema", which validators do not recognise.
        node["$schema"] = "http://json-schema.org/draft-07/schema#";
        var schema = JsonSchema.FromText(node.ToJsonString(), baseUri: new Uri($"https://jackcwf.test/{Guid.NewGuid():N}/compose-spec.json"));

        using var document = JsonDocument.Parse(Compose.ToJsonString());
        var result = schema.Evaluate(document.RootElement, new EvaluationOptions { OutputFormat = OutputFormat.List });

        var errors = (result.Details ?? []).Where(d => d.Errors is { Count: > 0 })
            .SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Value}")).Distinct().ToList();
        Assert.True(result.IsValid, string.Join("\n", errors));
    }

    [Theory]
    [InlineData("prometheus", "9090:9090")]
    [InlineData("grafana", "3001:3000")]
    [InlineData("alertmanager", "9093:9093")]
    public void UserInterfacesArePublishedOnTheSeedPorts(string service, string mapping)
    {
        var ports = Service(service)["ports"]!.AsArray().Select(p => p!.ToString()).ToList();

        Assert.Contains(mapping, ports);
    }

    [Theory]
    [InlineData("prometheus", "./prometheus", "/etc/prometheus")]
    [InlineData("alertmanager", "./alertmanager", "/etc/alertmanager")]
    [InlineData("grafana", "./grafana/provisioning", "/etc/grafana/provisioning")]
    [InlineData("grafana", "./grafana/dashboards", "/var/lib/grafana/dashboards")]
    public void ConfigurationFoldersAreMountedReadOnlyWhereTheProgramsLook(string service, string source, string target)
    {
        var volumes = Service(service)["volumes"]!.AsArray().Select(v => v!.ToString()).ToList();

        Assert.Contains($"{source}:{target}:ro", volumes);
        Assert.True(Directory.Exists(Path.Combine(MonitoringFiles.Directory, source)), $"{source} does not exist next to the Compose file.");
    }

    [Fact]
    public void TheDashboardProviderReadsTheFolderTheDashboardsAreMountedAt()
    {
        var provider = YamlJson.ParseFile(Path.Combine(MonitoringFiles.Directory, "grafana", "provisioning", "dashboards", "jackcwf.yml"));
        var path = (string?)provider["providers"]![0]!["options"]!["path"];

        Assert.Equal("/var/lib/grafana/dashboards", path);
        var home = (string?)Service("grafana")["environment"]!["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"];
        Assert.NotNull(home);
        Assert.StartsWith(path + "/", home);
        Assert.True(File.Exists(Path.Combine(MonitoringFiles.DashboardsDirectory, home[(path!.Length + 1)..])), $"The home dashboard {home} is not in grafana/dashboards.");
    }

    [Fact]
    public void PrometheusJoinsTheNetworkOfTheHighAvailabilityStack()
    {
        var ha = YamlJson.ParseFile(Path.Combine(RepoPaths.Root, "deployment", "docker-compose.ha.yml"));
        var frontend = (string?)ha["networks"]!["frontend"]!["name"];
        Assert.False(string.IsNullOrEmpty(frontend), "deployment/docker-compose.ha.yml gives its frontend network no fixed name.");

        var network = Compose["networks"]![frontend]?.AsObject();
        Assert.True(network is not null, $"docker-compose.monitoring.yml does not declare the network {frontend}.");
        Assert.True((bool?)network["external"] == true, $"{frontend} must be external (it belongs to the HA stack).");
        Assert.Contains(frontend, Service("prometheus")["networks"]!.AsArray().Select(n => n!.ToString()));
        Assert.Matches(KeepRegex("__meta_docker_network_name"), frontend);
    }

    [Theory]
    [InlineData("deployment/docker-compose.ha.yml", "web")]
    [InlineData("docker-compose.yml", "app")]
    public void PrometheusDiscoversTheReplicasOfTheServiceComposeFiles(string file, string service)
    {
        var compose = YamlJson.ParseFile(Path.Combine(RepoPaths.Root, file));
        var project = (string?)compose["name"];
        Assert.False(string.IsNullOrEmpty(project), $"{file} has no project name.");
        Assert.True(compose["services"]?[service] is not null, $"{file} has no service {service}.");

        Assert.Matches(KeepRegex("__meta_docker_container_label_com_docker_compose_project"), $"{project};{service}");
    }

    // The anchored regex of the "keep" relabelling whose source_labels start with sourceLabel (job jackcwf).
    private static Regex KeepRegex(string sourceLabel)
    {
        var config = YamlJson.ParseFile(MonitoringFiles.PrometheusConfig);
        var job = config["scrape_configs"]!.AsArray().Single(j => (string?)j!["job_name"] == "jackcwf")!;
        var rule = job["relabel_configs"]!.AsArray().Single(r => (string?)r!["action"] == "keep" && (string?)r["source_labels"]![0] == sourceLabel)!;
        return new Regex("^(?:" + (string)rule["regex"]! + ")$");
    }
}
