using Jackcwf.DeploymentTests.Infrastructure;
using k8s.Models;

namespace Jackcwf.DeploymentTests;

/// <summary>
/// The Kubernetes data tier: CloudNativePG and Redis Sentinel in the large overlay, an external
/// PostgreSQL backed up by pg_dump in small and medium, Redis passwords and NetworkPolicies everywhere.
/// </summary>
public sealed class KubernetesDataTierTests
{
    public static TheoryData<string> Overlays => [.. Kustomize.Overlays];

    [Theory]
    [InlineData("large")]
    [InlineData("components")]
    public async Task CloudNativePgObjectsValidateStrictlyAgainstTheirCrds(string target)
    {
        var yaml = target == "components" ? await Kustomize.RenderEveryComponentAsync() : await Kustomize.RenderAsync(target);

        var results = CrdSchemas.Validate(yaml);

        Assert.Equal(["barmancloud.cnpg.io/v1/ObjectStore jackcwf-backups", "postgresql.cnpg.io/v1/Cluster jackcwf-pg", "postgresql.cnpg.io/v1/ScheduledBackup jackcwf-pg-nightly"],
            results.Select(r => r.Object).Order(StringComparer.Ordinal));
        Assert.All(results, r => Assert.True(r.Errors.Count == 0, r.Object + ":\n" + string.Join('\n', r.Errors)));
    }

    [Theory]
    [InlineData("  instances: 3\n", "  instances: three\n", "/spec/instances")]
    [InlineData("enablePodAntiAffinity:", "enablePodAntiAfinity:", "/spec/affinity")]
    [InlineData("dataDurability: required", "dataDurability: always", "/spec/postgresql/synchronous/dataDurability")]
    [InlineData("destinationPath:", "destinationPat:", "/spec/configuration")]
    [InlineData("  method: plugin\n", "  method: plugins\n", "/spec/method")]
    public async Task CrdCheckRejectsAMisspelledFieldAWrongTypeAndAnUnknownValue(string original, string replacement, string location)
    {
        var yaml = await Kustomize.RenderAsync("large");
        Assert.Contains(original, yaml);

        var results = CrdSchemas.Validate(ReplaceFirst(yaml, original, replacement));

        Assert.Contains(results, r => r.Errors.Any(e => e.StartsWith(location, StringComparison.Ordinal)));
    }

    [Fact]
    public async Task LargeOverlayRunsPostgresWithCloudNativePgSynchronousReplicasAndAntiAffinity()
    {
        var yaml = await Kustomize.RenderAsync("large");
        var objects = Kustomize.LoadStrict(yaml);
        var spec = Map(YamlJson.ParseAll(yaml).OfType<System.Text.Json.Nodes.JsonObject>().Single(o => (string?)o["kind"] == "Cluster")["spec"]!);

        Assert.Equal(3, (int)spec["instances"]!);
        Assert.True((int)spec["postgresql"]!["synchronous"]!["number"]! >= 1);
        Assert.Equal("required", (string?)spec["postgresql"]!["synchronous"]!["dataDurability"]);
        Assert.True((bool)spec["affinity"]!["enablePodAntiAffinity"]!);
        Assert.Equal("required", (string?)spec["affinity"]!["podAntiAffinityType"]);
        Assert.Equal("kubernetes.io/hostname", (string?)spec["affinity"]!["topologyKey"]);
        var plugin = spec["plugins"]!.AsArray().Single()!;
        Assert.Equal("barman-cloud.cloudnative-pg.io", (string?)plugin["name"]);
        Assert.True((bool)plugin["isWALArchiver"]!);
        Assert.Null(spec["backup"]);   // the deprecated in-tree barmanObjectStore
        Assert.DoesNotContain("barmanObjectStore", yaml);

        var podMonitor = objects.OfType<PodMonitor>().Single();
        Assert.Equal("jackcwf-pg", podMonitor.Spec!.Selector!.MatchLabels["cnpg.io/cluster"]);
        Assert.Equal("metrics", podMonitor.Spec.PodMetricsEndpoints!.Single().Port);

        // The app and the migration Job read the generated -app Secret, whose uri names the -rw Service.
        var containers = objects.OfType<V1Deployment>().Where(d => d.Metadata.Name == "jackcwf-backend").SelectMany(d => d.Spec.Template.Spec.Containers)
            .Concat(objects.OfType<V1Job>().SelectMany(j => j.Spec.Template.Spec.Containers));
        Assert.All(containers, c =>
        {
            var source = c.Env.Single(e => e.Name == "DATABASE_URL").ValueFrom.SecretKeyRef;
            Assert.Equal(("jackcwf-pg-app", "uri"), (source.Name, source.Key));
        });
        Assert.Contains("jackcwf-pg-rw", Repo.Read("deployment", "kubernetes", "components", "cloudnative-pg", "kustomization.yaml"));
    }

    [Fact]
    public async Task BackupsUseTheBarmanCloudPluginWithAnObjectStoreAndANightlyScheduledBackup()
    {
        var documents = YamlJson.ParseAll(await Kustomize.RenderAsync("large")).OfType<System.Text.Json.Nodes.JsonObject>().ToList();
        var store = documents.Single(o => (string?)o["kind"] == "ObjectStore");
        var scheduled = documents.Single(o => (string?)o["kind"] == "ScheduledBackup");
        var cluster = documents.Single(o => (string?)o["kind"] == "Cluster");

        Assert.Equal((string?)store["metadata"]!["name"], (string?)cluster["spec"]!["plugins"]![0]!["parameters"]!["barmanObjectName"]);
        Assert.StartsWith("s3://", (string?)store["spec"]!["configuration"]!["destinationPath"]);
        Assert.NotNull(store["spec"]!["retentionPolicy"]);
        Assert.Equal((string?)cluster["metadata"]!["name"], (string?)scheduled["spec"]!["cluster"]!["name"]);
        Assert.Equal("plugin", (string?)scheduled["spec"]!["method"]);
        Assert.Equal("barman-cloud.cloudnative-pg.io", (string?)scheduled["spec"]!["pluginConfiguration"]!["name"]);
        Assert.Equal(6, ((string)scheduled["spec"]!["schedule"]!).Split(' ').Length);
    }

    [Theory]
    [InlineData("small")]
    [InlineData("medium")]
    public async Task SmallAndMediumKeepAnExternalDatabaseAndBackItUpWithPgDump(string overlay)
    {
        var objects = await Kustomize.LoadAsync(overlay);

        Assert.Empty(objects.OfType<CnpgCluster>());
        Assert.Contains("DATABASE_URL", objects.OfType<V1Secret>().Single(s => s.Metadata.Name == "jackcwf-secrets").StringData.Keys);
        Assert.Contains("EXTERNAL", Repo.Read("deployment", "kubernetes", "overlays", overlay, "kustomization.yaml"));
        var cron = objects.OfType<V1CronJob>().Single();
        var container = cron.Spec.JobTemplate.Spec.Template.Spec.Containers.Single();
        Assert.Contains("pg_dump --format=custom", string.Join('\n', container.Command));
        Assert.Equal(("jackcwf-secrets", "DATABASE_URL"), (container.Env.Single().ValueFrom.SecretKeyRef.Name, container.Env.Single().ValueFrom.SecretKeyRef.Key));
        Assert.Equal("Forbid", cron.Spec.ConcurrencyPolicy);
        var volume = cron.Spec.JobTemplate.Spec.Template.Spec.Volumes.Single();
        Assert.Contains(objects.OfType<V1PersistentVolumeClaim>(), c => c.Metadata.Name == volume.PersistentVolumeClaim.ClaimName);
    }

    [Fact]
    public async Task LargeOverlayRunsRedisWithSentinelInThreePodsThatTheReplicasFollow()
    {
        var objects = await Kustomize.LoadAsync("large");
        var statefulSet = objects.OfType<V1StatefulSet>().Single();
        var service = objects.OfType<V1Service>().Single(s => s.Metadata.Name == statefulSet.Spec.ServiceName);
        var url = objects.OfType<V1Deployment>().Single(d => d.Metadata.Name == "jackcwf-backend").Spec.Template.Spec.Containers.Single().Env.Single(e => e.Name == "REDIS_URL").Value;

        Assert.Equal(3, statefulSet.Spec.Replicas);
        Assert.Equal(["redis", "sentinel"], statefulSet.Spec.Template.Spec.Containers.Select(c => c.Name));
        Assert.Equal("None", service.Spec.ClusterIP);
        Assert.DoesNotContain(objects.OfType<V1Deployment>(), d => d.Metadata.Name == "jackcwf-redis");
        var hosts = Enumerable.Range(0, 3).Select(i => $"{statefulSet.Metadata.Name}-{i}.{service.Metadata.Name}:{service.Spec.Ports.Single(p => p.Name == "sentinel").Port}");
        Assert.Equal(string.Join(',', hosts) + ",serviceName=mymaster,password=$(REDIS_PASSWORD)", url);
        Assert.Equal(1, objects.OfType<V1PodDisruptionBudget>().Single(p => p.Metadata.Name == "jackcwf-redis").Spec.MaxUnavailable.Value is "1" ? 1 : 0);
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task Hole17_EveryRedisTakesItsPasswordFromASecretAndOnlyTheAppReachesRedisAndPostgres(string overlay)
    {
        var objects = await Kustomize.LoadAsync(overlay);
        var redisPods = objects.OfType<V1Deployment>().Where(d => d.Metadata.Name == "jackcwf-redis").Select(d => d.Spec.Template.Spec)
            .Concat(objects.OfType<V1StatefulSet>().Select(s => s.Spec.Template.Spec)).ToList();
        var app = objects.OfType<V1Deployment>().Single(d => d.Metadata.Name == "jackcwf-backend").Spec.Template.Spec.Containers.Single();

        Assert.NotEmpty(redisPods);
        Assert.All(redisPods.SelectMany(p => p.Containers), c =>
        {
            var fromSecret = (c.Env ?? []).Any(e => e.ValueFrom?.SecretKeyRef?.Name == "jackcwf-redis")
                || (c.VolumeMounts ?? []).Any(m => m.MountPath == "/run/secrets");
            Assert.True(fromSecret, $"{c.Name} gets no password from Secret jackcwf-redis");
            Assert.True((c.Args ?? []).Contains("--requirepass") || (c.Command ?? []).Any(a => a.EndsWith("-start.sh", StringComparison.Ordinal)), $"{c.Name} starts without requirepass");
        });
        Assert.Equal("jackcwf-redis", app.Env.Single(e => e.Name == "REDIS_PASSWORD").ValueFrom.SecretKeyRef.Name);
        Assert.Contains("$(REDIS_PASSWORD)", app.Env.Single(e => e.Name == "REDIS_URL").Value);

        var policies = objects.OfType<V1NetworkPolicy>().ToList();
        Assert.Contains(policies, p => p.Metadata.Name == "default-deny-all");
        var toRedis = policies.Where(p => Label(p.Spec.PodSelector.MatchLabels, "app.kubernetes.io/component") == "redis").SelectMany(p => p.Spec.Ingress ?? []).SelectMany(r => r.FromProperty).ToList();
        Assert.NotEmpty(toRedis);
        Assert.All(toRedis, f => Assert.Contains(f.PodSelector.MatchLabels["app.kubernetes.io/component"], new[] { "api", "redis" }));
        var toPostgres = policies.Where(p => p.Spec.PodSelector.MatchLabels?.ContainsKey("cnpg.io/cluster") == true)
            .SelectMany(p => p.Spec.Ingress).Where(r => r.Ports.Any(port => port.Port.Value == "5432")).SelectMany(r => r.FromProperty).ToList();
        if (overlay == "large")
        {
            Assert.NotEmpty(toPostgres);
            Assert.All(toPostgres, f => Assert.True(
                Label(f.PodSelector.MatchLabels, "app.kubernetes.io/component") is "api" or "migration" || f.PodSelector.MatchLabels.ContainsKey("cnpg.io/cluster")));
        }
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task Hole14_IngressReachesOnlyTheHttpPortAndPrometheusTheMetricsPort(string overlay)
    {
        var objects = await Kustomize.LoadAsync(overlay);
        var config = objects.OfType<V1ConfigMap>().Single(c => c.Metadata.Name == "jackcwf-config");
        var container = objects.OfType<V1Deployment>().Single(d => d.Metadata.Name == "jackcwf-backend").Spec.Template.Spec.Containers.Single();
        var metricsPort = container.Ports.Single(p => p.Name == "metrics").ContainerPort;

        Assert.Equal(config.Data["METRICS_PORT"], metricsPort.ToString());
        Assert.NotEqual(config.Data["PORT"], config.Data["METRICS_PORT"]);
        var ingress = objects.OfType<V1Ingress>().Single();
        var publicService = objects.OfType<V1Service>().Single(s => s.Metadata.Name == ingress.Spec.Rules.Single().Http.Paths.Single().Backend.Service.Name);
        Assert.All(publicService.Spec.Ports, p => Assert.Equal("http", p.TargetPort.Value));
        foreach (var monitor in objects.OfType<ServiceMonitor>())
        {
            var selected = objects.OfType<V1Service>().Single(s => monitor.Spec!.Selector!.MatchLabels.All(l => Label(s.Metadata.Labels, l.Key) == l.Value));
            Assert.Equal("metrics", selected.Spec.Ports.Single(p => p.Name == monitor.Spec!.Endpoints!.Single().Port).TargetPort.Value);
        }
    }

    private static string? Label(IDictionary<string, string>? labels, string key) =>
        labels is not null && labels.TryGetValue(key, out var value) ? value : null;

    private static System.Text.Json.Nodes.JsonObject Map(System.Text.Json.Nodes.JsonNode node) => node.AsObject();

    private static string ReplaceFirst(string text, string oldValue, string newValue)
    {
        var index = text.IndexOf(oldValue, StringComparison.Ordinal);
        return text[..index] + newValue + text[(index + oldValue.Length)..];
    }
}
