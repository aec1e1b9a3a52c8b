using System.Text.Json;
using System.Text.Json.Nodes;
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
    [InlineData("prometheus", "127.0.0.1:9090:9090")]
    [InlineData("grafana", "127.0.0.1:3001:3000")]
    [InlineData("alertmanager", "127.0.0.1:9093:9093")]
    public void UserInterfacesArePublishedOnTheSeedPortsOfTheLoopbackOnly(string service, string mapping)
    {
        var ports = Service(service)["ports"]!.AsArray().Select(p => p!.ToString()).ToList();

        Assert.Equal([mapping], ports);
    }

    // Issue 12, item 13: nothing of the monitoring stack listens on a public interface, and Grafana
    // has no default admin password.
    [Fact]
    public void Hole13_NoMonitoringServiceIsPublishedBeyondTheLoopback()
    {
        var published = Compose["services"]!.AsObject()
            .SelectMany(s => (s.Value!["ports"]?.AsArray() ?? []).Select(p => (s.Key, Port: p!.ToString())))
            .ToList();

        Assert.NotEmpty(published);
        Assert.All(published, p => Assert.True(p.Port.StartsWith("127.0.0.1:", StringComparison.Ordinal), $"{p.Key} publishes {p.Port} on every interface"));
    }

    [Fact]
    public void Hole13_GrafanaAdminPasswordComesFromASecretWithNoDefault()
    {
        var grafana = Service("grafana");
        var environment = grafana["environment"]!.AsObject();

        Assert.False(environment.ContainsKey("GF_SECURITY_ADMIN_PASSWORD"), "a password in the environment (default admin) is readable by anyone with docker inspect");
        Assert.Equal("/run/secrets/grafana_admin_password", (string?)environment["GF_SECURITY_ADMIN_PASSWORD__FILE"]);
        Assert.Contains("grafana_admin_password", grafana["secrets"]!.AsArray().Select(n => n!.ToString()));
        Assert.NotNull(Compose["secrets"]!["grafana_admin_password"]!["file"]);
        Assert.Equal("false", (string?)environment["GF_AUTH_ANONYMOUS_ENABLED"]);
        Assert.Equal("false", (string?)environment["GF_USERS_ALLOW_SIGN_UP"]);
    }

    [Fact]
    public void Hole18_PrometheusNeedsNoDockerSocketAndCadvisorIsOptional()
    {
        var prometheus = Service("prometheus");

        Assert.DoesNotContain(prometheus["volumes"]!.AsArray(), v => v!.ToString().Contains("docker.sock", StringComparison.Ordinal));
        Assert.Null(prometheus["user"]);
        Assert.DoesNotContain("docker_sd_configs", File.ReadAllText(MonitoringFiles.PrometheusConfig));
        Assert.Equal(["cadvisor"], Service("cadvisor")["profiles"]!.AsArray().Select(n => n!.ToString()));
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
        var frontend = (string?)ha["networks"]?["frontend"]?["name"];
        Assert.False(string.IsNullOrEmpty(frontend), "deployment/docker-compose.ha.yml gives its frontend network no fixed name.");

        var network = Compose["networks"]?[frontend!];
        Assert.True(network is not null, $"docker-compose.monitoring.yml does not declare the network {frontend}.");
        Assert.True((bool?)network["external"] == true, $"{frontend} must be external (it belongs to the HA stack).");
        Assert.Contains(frontend, Service("prometheus")["networks"]!.AsArray().Select(n => n!.ToString()));
    }

    [Fact]
    public void TheDataTierExportersJoinTheNetworkWherePostgresAndRedisListen()
    {
        var ha = YamlJson.ParseFile(Path.Combine(RepoPaths.Root, "deployment", "docker-compose.ha.yml"));
        var backend = (string?)ha["networks"]?["backend"]?["name"];
        Assert.False(string.IsNullOrEmpty(backend), "deployment/docker-compose.ha.yml gives its backend network no fixed name.");

        Assert.True((bool?)Compose["networks"]![backend!]!["external"]);
        foreach (var exporter in new[] { "postgres-exporter", "redis-exporter" })
        {
            Assert.Contains(backend, Service(exporter)["networks"]!.AsArray().Select(n => n!.ToString()));
        }
        Assert.Contains("./postgres-exporter:/etc/postgres-exporter:ro", Service("postgres-exporter")["volumes"]!.AsArray().Select(n => n!.ToString()));
        Assert.Contains("--extend.query-path=/etc/postgres-exporter/queries.yaml", Service("postgres-exporter")["command"]!.AsArray().Select(n => n!.ToString()));
        var haServices = ha["services"]!.AsObject().Select(s => s.Key).ToHashSet();
        var config = YamlJson.ParseFile(MonitoringFiles.PrometheusConfig);
        foreach (var job in new[] { "redis", "redis-sentinel" })
        {
            var targets = config["scrape_configs"]!.AsArray().Single(j => (string?)j!["job_name"] == job)!["static_configs"]![0]!["targets"]!.AsArray();
            Assert.All(targets, t => Assert.Contains(new Uri(t!.ToString()).Host, haServices));
        }
    }

    [Theory]
    [InlineData("deployment/docker-compose.ha.yml", "web")]
    [InlineData("docker-compose.yml", "app")]
    public void PrometheusFindsTheReplicasByTheirServiceNameOnTheirMetricsPort(string file, string service)
    {
        var compose = YamlJson.ParseFile(Path.Combine(RepoPaths.Root, file));
        var app = compose["services"]?[service]?.AsObject();
        Assert.True(app is not null, $"{file} has no service {service}.");
        var metricsPort = (string?)app["environment"]!["METRICS_PORT"];

        var config = YamlJson.ParseFile(MonitoringFiles.PrometheusConfig);
        var dns = config["scrape_configs"]!.AsArray().Single(j => (string?)j!["job_name"] == "jackcwf")!["dns_sd_configs"]!.AsArray().Single()!;
        Assert.Contains(service, dns["names"]!.AsArray().Select(n => n!.ToString()));
        Assert.Equal(metricsPort, dns["port"]!.ToString());
    }
}
