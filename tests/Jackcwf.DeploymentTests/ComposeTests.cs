using System.Text.Json.Nodes;
using Jackcwf.DeploymentTests.Infrastructure;

namespace Jackcwf.DeploymentTests;

/// <summary>
/// The Compose files, checked as far as possible without a Docker engine: the Compose Specification
/// schema plus the semantics `docker compose config` and `up` would rely on.
/// </summary>
public sealed class ComposeTests
{
    public static TheoryData<string> Files => [Compose.SingleNode, Compose.HighAvailability];

    [Theory]
    [MemberData(nameof(Files))]
    public void ComposeFileMatchesTheComposeSpecificationSchema(string file)
    {
        var errors = SchemaValidator.For("compose-spec.json").Validate(Compose.Load(file));

        Assert.True(errors.Count == 0, string.Join('\n', errors));
    }

    [Fact]
    public void SchemaValidationRejectsAMisspelledServiceKey()
    {
        var document = Compose.Load(Compose.HighAvailability);
        var web = document["services"]!["web"]!.AsObject();
        web["environmnet"] = web["environment"]!.DeepClone();
        web.Remove("environment");

        var errors = SchemaValidator.For("compose-spec.json").Validate(document);

        Assert.Contains(errors, e => e.Contains("/services/web", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void EveryReferenceResolvesAsDockerComposeConfigWouldRequire(string file)
    {
        var document = Compose.Load(file);
        var services = document["services"]!.AsObject();
        var folder = Path.GetDirectoryName(Repo.PathOf(file.Split('/')))!;
        string[] Declared(string section) => document[section]?.AsObject().Select(kv => kv.Key).ToArray() ?? [];
        static IEnumerable<string> Names(JsonNode? node) => node switch
        {
            JsonArray list => list.Select(i => i is JsonObject o ? (string)o["source"]! : (string)i!),
            JsonObject map => map.Select(kv => kv.Key),
            _ => [],
        };

        Assert.All(services, s =>
        {
            var service = s.Value!.AsObject();
            Assert.All(Names(service["depends_on"]), d => Assert.Contains(d, services.Select(x => x.Key)));
            Assert.All(Names(service["networks"]), n => Assert.Contains(n, Declared("networks")));
            Assert.All(Names(service["secrets"]), n => Assert.Contains(n, Declared("secrets")));
            foreach (var volume in service["volumes"]?.AsArray().Select(v => (string)v!) ?? [])
            {
                var source = volume.Split(':')[0];
                if (source.StartsWith('.'))
                    Assert.True(Path.Exists(Path.Combine(folder, source)), $"{file}/{s.Key}: bind mount source {source} does not exist");
                else if (!source.StartsWith('/'))
                    Assert.Contains(source, Declared("volumes"));
            }
            if (service["env_file"] is JsonNode envFile)
                Assert.True(File.Exists(Path.Combine(folder, (string)envFile! + ".example")), $"{file}/{s.Key}: {envFile} has no .example template");
            if (service["build"] is JsonObject build)
                Assert.True(File.Exists(Path.Combine(folder, (string)build["context"]!, (string)build["dockerfile"]!)), $"{file}/{s.Key}: Dockerfile not found");
        });
    }

    [Fact]
    public void HighAvailabilityStackHasTraefikPostgresRedisMigrateAndWeb()
    {
        var services = Compose.Services(Compose.HighAvailability);

        Assert.Equal(
            ["migrate", "postgres", "postgres-backup", "redis-1", "redis-2", "redis-3", "sentinel-1", "sentinel-2", "sentinel-3", "socket-proxy", "traefik", "web"],
            services.Select(s => s.Key).Order(StringComparer.Ordinal));
        Assert.StartsWith("traefik:v3", (string?)services["traefik"]!["image"]);
    }

    [Fact]
    public void WebReplicasWaitForTheOneShotMigrationAndHealthyDependencies()
    {
        var services = Compose.Services(Compose.HighAvailability);
        var dependsOn = services["web"]!["depends_on"]!.AsObject();

        Assert.Equal("service_completed_successfully", (string?)dependsOn["migrate"]!["condition"]);
        Assert.Equal("service_healthy", (string?)dependsOn["postgres"]!["condition"]);
        Assert.All(["sentinel-1", "sentinel-2", "sentinel-3"], s => Assert.Equal("service_healthy", (string?)dependsOn[s]!["condition"]));
        Assert.Equal("service_healthy", (string?)services["migrate"]!["depends_on"]!["postgres"]!["condition"]);
        Assert.Equal(["dotnet", "Jackcwf.Api.dll", "migrate"], services["migrate"]!["command"]!.AsArray().Select(n => (string?)n));
        Assert.Equal("no", (string?)services["migrate"]!["restart"]);
        Assert.Equal("false", Compose.Environment(services["web"]!.AsObject(), "MIGRATE_ON_STARTUP"));
        Assert.Equal(services["web"]!["image"]!.ToString(), services["migrate"]!["image"]!.ToString());
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void EveryLongRunningServiceHasAHealthcheckThatNeedsNoCurl(string file)
    {
        var services = Compose.Services(file);

        Assert.All(services.Where(s => s.Key != "migrate"), s =>
        {
            var test = s.Value!["healthcheck"]?["test"]?.AsArray().Select(n => (string?)n).ToList();
            Assert.True(test is { Count: > 1 }, $"{file}: service {s.Key} has no healthcheck");
            // The Jackcwf image has neither curl nor wget (the Alpine-based images have BusyBox wget).
            if (Compose.AppServices[file].Contains(s.Key)) Assert.DoesNotContain(test, t => t!.Contains("curl") || t.Contains("wget"));
        });
        Assert.All(Compose.AppServices[file].Where(n => n != "migrate"), name =>
            Assert.Equal(["CMD", "dotnet", "Jackcwf.Api.dll", "healthcheck"], services[name]!["healthcheck"]!["test"]!.AsArray().Select(n => (string?)n)));
    }

    [Fact]
    public void WebScalesWithoutFixedContainerNamesOrHostPorts()
    {
        var web = Compose.Services(Compose.HighAvailability)["web"]!.AsObject();

        Assert.Equal(3, (int)web["deploy"]!["replicas"]!);
        Assert.False(web.ContainsKey("container_name"), "a fixed container_name prevents --scale web=5");
        Assert.False(web.ContainsKey("ports"), "a host port prevents --scale web=5; Traefik reaches the replicas");
        Assert.Contains("frontend", web["networks"]!.AsArray().Select(n => (string?)n));
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void StopGracePeriodExceedsDrainDelayPlusShutdownTimeout(string file)
    {
        var services = Compose.Services(file);

        Assert.All(Compose.AppServices[file].Where(n => n != "migrate"), name =>
        {
            var service = services[name]!.AsObject();
            var drain = int.Parse(Compose.Environment(service, "SHUTDOWN_DRAIN_DELAY_SECONDS") ?? "5");
            var shutdown = int.Parse(Compose.Environment(service, "GRACEFUL_SHUTDOWN_TIMEOUT") ?? "30");
            var grace = Compose.Seconds((string)service["stop_grace_period"]!);
            Assert.True(grace > drain + shutdown + 5, $"{file}/{name}: stop_grace_period {grace}s must exceed drain {drain}s + shutdown {shutdown}s + margin");
        });
    }

    [Fact]
    public void DrainDelayOutlastsTraefiksHealthCheckSoNoRequestHitsAClosedListener()
    {
        var web = Compose.Services(Compose.HighAvailability)["web"]!.AsObject();
        var labels = Compose.Labels(web);
        var interval = Compose.Seconds(labels["traefik.http.services.web.loadBalancer.healthCheck.interval"]);

        Assert.True(int.Parse(Compose.Environment(web, "SHUTDOWN_DRAIN_DELAY_SECONDS")!) > interval,
            "Traefik must see /health/ready turn 503 before the replica stops accepting connections");
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void AppContainersRunReadOnlyWithAWritableTmp(string file)
    {
        var services = Compose.Services(file);

        Assert.All(Compose.AppServices[file], name =>
        {
            var service = services[name]!.AsObject();
            Assert.True((bool?)service["read_only"], $"{name}: read_only");
            Assert.Contains("/tmp", service["tmpfs"]!.AsArray().Select(n => (string?)n));
            Assert.Contains("ALL", service["cap_drop"]!.AsArray().Select(n => (string?)n));
        });
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void PostgresPasswordComesFromADockerSecretNotTheFile(string file)
    {
        var document = Compose.Load(file);
        var postgres = document["services"]!["postgres"]!.AsObject();

        Assert.Equal("/run/secrets/postgres_password", Compose.Environment(postgres, "POSTGRES_PASSWORD_FILE"));
        Assert.Null(Compose.Environment(postgres, "POSTGRES_PASSWORD"));
        Assert.NotNull(document["secrets"]!["postgres_password"]!["file"]);
        Assert.All(Compose.AppServices[file], name =>
            Assert.Null(Compose.Environment(document["services"]![name]!.AsObject(), "DATABASE_URL")));
    }

    [Fact]
    public void TraefikLabelsMatchTheFileProviderSchema()
    {
        var web = Compose.Services(Compose.HighAvailability)["web"]!.AsObject();
        var dynamic = Compose.TraefikLabelsAsDynamicConfig(web, "web");

        var errors = SchemaValidator.For("traefik-v3-file-provider.json").Validate(dynamic);

        Assert.True(errors.Count == 0, string.Join('\n', errors) + "\n" + dynamic.ToJsonString());
        Assert.NotNull(dynamic["http"]!["routers"]!["web"]);
    }

    [Fact]
    public void TraefikLabelSchemaCheckRejectsAMisspelledOption()
    {
        var web = Compose.Services(Compose.HighAvailability)["web"]!.AsObject();
        var labels = web["labels"]!.AsArray();
        labels.Add("traefik.http.services.web.loadBalancer.healthChek.path=/health/ready");

        var errors = SchemaValidator.For("traefik-v3-file-provider.json").Validate(Compose.TraefikLabelsAsDynamicConfig(web, "web"));

        Assert.NotEmpty(errors);
    }

    [Fact]
    public void TraefikLabelsUseStickyCookieHealthCheckAndTheFileMiddlewares()
    {
        var web = Compose.Services(Compose.HighAvailability)["web"]!.AsObject();
        var labels = Compose.Labels(web);
        var middlewares = Traefik.Dynamic()["http"]!["middlewares"]!.AsObject().Select(m => m.Key + "@file").ToHashSet();

        Assert.Equal("true", labels["traefik.enable"]);
        Assert.Equal("/health/ready", labels["traefik.http.services.web.loadBalancer.healthCheck.path"]);
        Assert.Contains("traefik.http.services.web.loadBalancer.sticky.cookie.name", labels.Keys);
        Assert.Equal("8080", labels["traefik.http.services.web.loadBalancer.server.port"]);
        Assert.Equal(Compose.Environment(web, "PORT"), labels["traefik.http.services.web.loadBalancer.server.port"]);
        var used = labels["traefik.http.routers.web.middlewares"].Split(',');
        Assert.Equal(middlewares.Order(), used.Order());
        // Retry runs last, closest to the backend, so rate limiting and the breaker see each client request once.
        Assert.Equal("retry@file", used[^1]);
    }

    [Fact]
    public void TraefikWatchesTheNetworkTheReplicasShare()
    {
        var document = Compose.Load(Compose.HighAvailability);
        var network = (string?)document["networks"]!["frontend"]!["name"];

        Assert.Equal(network, (string?)Traefik.Static()["providers"]!["docker"]!["network"]);
        Assert.Equal(network, Compose.Labels(document["services"]!["web"]!.AsObject())["traefik.docker.network"]);
        Assert.True((bool?)document["networks"]!["backend"]!["internal"], "PostgreSQL and Redis stay off Traefik's network");
        Assert.Contains("./traefik/traefik.yml:/etc/traefik/traefik.yml:ro", document["services"]!["traefik"]!["volumes"]!.AsArray().Select(v => (string?)v));
        Assert.True(File.Exists(Repo.PathOf("deployment", "traefik", "traefik.yml")));
    }
}
