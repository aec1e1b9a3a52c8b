using System.Text.Json.Nodes;
using Jackcwf.DeploymentTests.Infrastructure;

namespace Jackcwf.DeploymentTests;

/// <summary>
/// Safe deployment defaults (issue 12, items 13-15, 17, 18), checked on the files as Compose and
/// Traefik read them. Each test is named after the hole it closes.
/// </summary>
public sealed class DeploymentDefaultsTests
{
    private static readonly string[] ComposeFiles = [Compose.SingleNode, Compose.HighAvailability, MonitoringCompose];

    private const string MonitoringCompose = "deployment/monitoring/docker-compose.monitoring.yml";

    [Fact]
    public void Hole13_TraefikDashboardIsLoopbackOnlyAndBehindBasicAuth()
    {
        var config = Traefik.Static();
        var admin = Traefik.Admin();
        var traefik = Compose.Services(Compose.HighAvailability)["traefik"]!.AsObject();

        Assert.False((bool?)config["api"]!["insecure"] ?? false, "api.insecure serves the dashboard without any router or auth");
        var router = admin["http"]!["routers"]!["dashboard"]!;
        Assert.Equal("api@internal", (string?)router["service"]);
        Assert.Equal(["traefik"], router["entryPoints"]!.AsArray().Select(n => (string?)n));
        var middleware = Assert.Single(router["middlewares"]!.AsArray());
        Assert.NotNull(admin["http"]!["middlewares"]![(string)middleware!]!["basicAuth"]!["usersFile"]);
        var dashboardPort = config["entryPoints"]!["traefik"]!["address"]!.ToString().TrimStart(':');
        Assert.Contains($"127.0.0.1:{dashboardPort}:{dashboardPort}", Ports(traefik));
        Assert.Contains(traefik["secrets"]!.AsArray(), s => (string?)s!["target"] == (string?)admin["http"]!["middlewares"]![(string)middleware!]!["basicAuth"]!["usersFile"]);
    }

    [Fact]
    public void Hole14_MetricsAreServedOnAnInternalPortThatNoRouterForwards()
    {
        foreach (var (file, name) in new[] { (Compose.HighAvailability, "web"), (Compose.SingleNode, "app") })
        {
            var app = Compose.Services(file)[name]!.AsObject();
            var port = Compose.Environment(app, "PORT");
            var metrics = Compose.Environment(app, "METRICS_PORT");
            Assert.False(string.IsNullOrEmpty(metrics), $"{file}/{name}: METRICS_PORT unset, so /metrics is on the public port");
            Assert.NotEqual(port, metrics);
            Assert.DoesNotContain(Ports(app), p => p.EndsWith(":" + metrics, StringComparison.Ordinal));
        }
        var labels = Compose.Labels(Compose.Services(Compose.HighAvailability)["web"]!.AsObject());
        Assert.Equal("8080", labels["traefik.http.services.web.loadBalancer.server.port"]);
        var singleNode = YamlJson.ParseObject(Repo.Read("deployment", "traefik", "single-node", "app.yml"));
        Assert.Equal("http://app:8080", (string?)singleNode["http"]!["services"]!["app"]!["loadBalancer"]!["servers"]![0]!["url"]);
    }

    [Fact]
    public void Hole15_BothComposeFilesRedirectHttpToHttpsAndSendHsts()
    {
        foreach (var config in new[] { Traefik.Static(), Traefik.SingleNodeStatic() })
        {
            var entryPoints = config["entryPoints"]!;
            var redirect = entryPoints["web"]!["http"]!["redirections"]!["entryPoint"]!;
            Assert.Equal("websecure", (string?)redirect["to"]);
            Assert.Equal("https", (string?)redirect["scheme"]);
            Assert.Equal(":443", (string?)entryPoints["websecure"]!["address"]);
            Assert.NotNull(entryPoints["websecure"]!["http"]!["tls"]);
            Assert.Equal("web", (string?)config["certificatesResolvers"]!["letsencrypt"]!["acme"]!["httpChallenge"]!["entryPoint"]);
        }

        var labels = Compose.Labels(Compose.Services(Compose.HighAvailability)["web"]!.AsObject());
        Assert.Equal("websecure", labels["traefik.http.routers.web.entryPoints"]);
        Assert.Equal("true", labels["traefik.http.routers.web.tls"]);
        Assert.Equal("${JACKCWF_CERT_RESOLVER:-}", labels["traefik.http.routers.web.tls.certResolver"]);
        Assert.Contains("security-headers@file", labels["traefik.http.routers.web.middlewares"]);
        Assert.DoesNotContain(labels.Keys, k => k.StartsWith("traefik.http.routers.", StringComparison.Ordinal) && k.EndsWith(".entryPoints", StringComparison.Ordinal) && labels[k].Contains("web,", StringComparison.Ordinal));

        var app = YamlJson.ParseObject(Repo.Read("deployment", "traefik", "single-node", "app.yml"))["http"]!["routers"]!["app"]!;
        Assert.Equal(["websecure"], app["entryPoints"]!.AsArray().Select(n => (string?)n));
        Assert.Contains("security-headers", app["middlewares"]!.AsArray().Select(n => (string?)n));
        Assert.Contains("JACKCWF_CERT_RESOLVER", (string?)app["tls"]!["certResolver"]);

        var headers = Traefik.Dynamic()["http"]!["middlewares"]!["security-headers"]!["headers"]!;
        Assert.True((int)headers["stsSeconds"]! >= 15_552_000, "HSTS for at least 180 days");
        Assert.True((bool?)headers["forceSTSHeader"]);

        // The single-node app is reachable on loopback only; the public ports are Traefik's.
        var single = Compose.Services(Compose.SingleNode);
        Assert.All(Ports(single["app"]!.AsObject()), p => Assert.StartsWith("127.0.0.1:", p));
        Assert.Equal(["443:443", "80:80"], Ports(single["traefik"]!.AsObject()).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Hole17_EveryComposeRedisAndSentinelRequiresThePasswordFromADockerSecret()
    {
        var document = Compose.Load(Compose.HighAvailability);
        var services = document["services"]!.AsObject();
        var redis = services.Where(s => ((string?)s.Value!["image"])?.StartsWith("redis:", StringComparison.Ordinal) == true).ToList();

        Assert.Equal(6, redis.Count);
        Assert.NotNull(document["secrets"]!["redis_password"]!["file"]);
        foreach (var (name, node) in redis)
        {
            var service = node!.AsObject();
            Assert.Contains("redis_password", service["secrets"]!.AsArray().Select(n => (string?)n));
            var script = service["entrypoint"]!.AsArray().Select(n => (string)n!).Last();
            var source = service["volumes"]!.AsArray().Select(v => ((string)v!).Split(':')).Single(v => v[1] == script)[0];
            var text = Repo.Read(["deployment", .. source.TrimStart('.', '/').Split('/')]);
            Assert.Contains("/run/secrets/redis_password", text);
            Assert.Contains("requirepass $password", text);
            // Nothing on the command line or in the environment holds the password.
            Assert.DoesNotContain(Compose.EnvironmentKeys(service), k => k.Contains("PASS", StringComparison.Ordinal));
            Assert.Contains("redis_password", (string?)service["healthcheck"]!["test"]![1]);
            Assert.True(service["ports"] is null, $"{name} must not be published");
        }
        Assert.Null(Compose.Environment(services["web"]!.AsObject(), "REDIS_URL"));
        var example = Repo.Read(".env.example");
        Assert.Contains("REDIS_URL=sentinel-1:26379,sentinel-2:26379,sentinel-3:26379,serviceName=mymaster,password=", example);
    }

    [Fact]
    public void Hole18_OnlyTheReadOnlyContainerOnlySocketProxyMountsTheDockerSocket()
    {
        var mounts = ComposeFiles.SelectMany(file => Compose.Services(file).Select(s => (File: file, Name: s.Key, Service: s.Value!.AsObject())))
            .Where(s => (s.Service["volumes"]?.AsArray() ?? []).Any(v => v is JsonValue && ((string)v!).Contains("docker.sock", StringComparison.Ordinal)))
            .ToList();

        var proxy = Assert.Single(mounts);
        Assert.Equal((Compose.HighAvailability, "socket-proxy"), (proxy.File, proxy.Name));
        Assert.Contains("/var/run/docker.sock:/var/run/docker.sock:ro", proxy.Service["volumes"]!.AsArray().Select(n => (string?)n));
        Assert.Equal("0", Compose.Environment(proxy.Service, "POST"));
        Assert.Equal("1", Compose.Environment(proxy.Service, "CONTAINERS"));
        foreach (var api in new[] { "EXEC", "IMAGES", "VOLUMES", "NETWORKS", "SECRETS", "SERVICES", "TASKS", "INFO" })
        {
            Assert.Equal("0", Compose.Environment(proxy.Service, api));
        }
        Assert.True(proxy.Service["ports"] is null, "the socket proxy must never be published");
        Assert.Equal("tcp://socket-proxy:2375", (string?)Traefik.Static()["providers"]!["docker"]!["endpoint"]);
        Assert.True((bool?)Compose.Load(Compose.HighAvailability)["networks"]!["docker-api"]!["internal"]);

        var monitoring = Compose.Services(MonitoringCompose);
        Assert.Null(monitoring["prometheus"]!["user"]);
        var cadvisor = monitoring["cadvisor"]!.AsObject();
        Assert.Equal(["cadvisor"], cadvisor["profiles"]!.AsArray().Select(n => (string?)n));
        Assert.Contains("Risk", Repo.Read(MonitoringCompose.Split('/')));
    }

    private static List<string> Ports(JsonObject service) =>
        (service["ports"]?.AsArray() ?? []).Select(p => (string)p!).ToList();
}
