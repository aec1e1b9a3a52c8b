using Jackcwf.DeploymentTests.Infrastructure;
using k8s.Models;

namespace Jackcwf.DeploymentTests;

/// <summary>What the rendered manifests promise at run time: safe rollouts, drains, probes, a restricted pod, scaling.</summary>
public sealed class KubernetesBehaviourTests
{
    public static TheoryData<string> Overlays => [.. Kustomize.Overlays];

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task GracePeriodExceedsPreStopPlusDrainDelayPlusShutdownTimeout(string overlay)
    {
        var objects = await Kustomize.LoadAsync(overlay);
        var (deployment, config) = (Api(objects), Config(objects));
        var pod = deployment.Spec.Template.Spec;

        var preStop = pod.Containers.Single().Lifecycle?.PreStop?.Sleep?.Seconds ?? 0;
        var drain = Seconds(config, "SHUTDOWN_DRAIN_DELAY_SECONDS");
        var shutdown = Seconds(config, "GRACEFUL_SHUTDOWN_TIMEOUT");

        Assert.True(preStop >= 3, "a preStop delay lets endpoint removal propagate before SIGTERM");
        Assert.True(pod.TerminationGracePeriodSeconds > preStop + drain + shutdown + 5,
            $"terminationGracePeriodSeconds {pod.TerminationGracePeriodSeconds} must exceed preStop {preStop} + drain {drain} + shutdown {shutdown} + a margin");
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task RollingUpdatesNeverRemoveAReadyReplicaFirst(string overlay)
    {
        var strategy = Api(await Kustomize.LoadAsync(overlay)).Spec.Strategy;

        Assert.Equal("RollingUpdate", strategy.Type);
        Assert.Equal("0", strategy.RollingUpdate.MaxUnavailable.Value);
        Assert.NotEqual("0", strategy.RollingUpdate.MaxSurge.Value);
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task EveryPodRunsUnderTheRestrictedSecurityProfile(string overlay)
    {
        var objects = await Kustomize.LoadAsync(overlay);
        var pods = objects.OfType<V1Deployment>().Select(d => (d.Metadata.Name, d.Spec.Template.Spec))
            .Concat(objects.OfType<V1Job>().Select(j => (j.Metadata.Name, j.Spec.Template.Spec)))
            .Concat(objects.OfType<V1StatefulSet>().Select(s => (s.Metadata.Name, s.Spec.Template.Spec)))
            .Concat(objects.OfType<V1CronJob>().Select(c => (c.Metadata.Name, c.Spec.JobTemplate.Spec.Template.Spec)))
            .ToList();

        Assert.True(pods.Count >= 3, "the API Deployment, the migration Job and Redis");
        Assert.All(pods, p =>
        {
            var (name, spec) = p;
            Assert.True(spec.SecurityContext?.RunAsNonRoot, $"{name}: runAsNonRoot");
            Assert.Equal("RuntimeDefault", spec.SecurityContext?.SeccompProfile?.Type);
            Assert.False(spec.AutomountServiceAccountToken ?? true, $"{name}: no service account token");
            Assert.All(spec.Containers, c =>
            {
                Assert.False(c.SecurityContext.AllowPrivilegeEscalation ?? true, $"{name}/{c.Name}: allowPrivilegeEscalation");
                Assert.True(c.SecurityContext.ReadOnlyRootFilesystem, $"{name}/{c.Name}: readOnlyRootFilesystem");
                Assert.Equal(["ALL"], c.SecurityContext.Capabilities.Drop);
                Assert.NotNull(c.Resources?.Limits);
            });
        });
        var api = Api(objects).Spec.Template.Spec;
        var tmp = api.Containers.Single().VolumeMounts.Single(m => m.MountPath == "/tmp");
        Assert.NotNull(api.Volumes.Single(v => v.Name == tmp.Name).EmptyDir);
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task ProbesUseTheServicesHealthPathsWithSaneTimeouts(string overlay)
    {
        var container = Api(await Kustomize.LoadAsync(overlay)).Spec.Template.Spec.Containers.Single();

        Assert.Equal("/health/live", container.StartupProbe.HttpGet.Path);
        Assert.Equal("/health/ready", container.ReadinessProbe.HttpGet.Path);
        Assert.Equal("/health/live", container.LivenessProbe.HttpGet.Path);
        Assert.All([container.StartupProbe, container.ReadinessProbe, container.LivenessProbe], p =>
        {
            Assert.Equal("http", p.HttpGet.Port.Value);
            Assert.True(p.TimeoutSeconds >= 3, "a 1 s probe timeout gets busy replicas restarted");
        });
        // Liveness must tolerate a long stall (>= 30 s) before the kubelet restarts the container.
        Assert.True(container.LivenessProbe.PeriodSeconds * container.LivenessProbe.FailureThreshold >= 30);
        Assert.True(container.StartupProbe.PeriodSeconds * container.StartupProbe.FailureThreshold >= 60);
        Assert.Contains(container.Ports, p => p.Name == "http");
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task ReplicasSpreadAcrossNodes(string overlay)
    {
        var constraints = Api(await Kustomize.LoadAsync(overlay)).Spec.Template.Spec.TopologySpreadConstraints;

        Assert.Contains(constraints, c => c.TopologyKey == "kubernetes.io/hostname" && c.MaxSkew == 1);
        Assert.All(constraints, c => Assert.Equal("jackcwf", c.LabelSelector.MatchLabels["app.kubernetes.io/name"]));
    }

    [Fact]
    public async Task AutoscalerFollowsTheSeedCpuAndMemoryTargets()
    {
        var hpa = (await Kustomize.LoadAsync("base")).OfType<V2HorizontalPodAutoscaler>().Single();

        Assert.Equal((3, 10), (hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas));
        Assert.Equal("jackcwf-backend", hpa.Spec.ScaleTargetRef.Name);
        var targets = hpa.Spec.Metrics.ToDictionary(m => m.Resource.Name, m => m.Resource.Target.AverageUtilization);
        Assert.Equal(70, targets["cpu"]);
        Assert.Equal(80, targets["memory"]);
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task MigrationsRunOnceInAJobWhileReplicasWaitForTheSchema(string overlay)
    {
        var objects = await Kustomize.LoadAsync(overlay);
        var job = objects.OfType<V1Job>().Single();
        var container = job.Spec.Template.Spec.Containers.Single();

        Assert.Equal(["dotnet", "Jackcwf.Api.dll", "migrate"], container.Command);
        Assert.Equal(Api(objects).Spec.Template.Spec.Containers.Single().Image, container.Image);
        Assert.Equal("false", Config(objects).Data["MIGRATE_ON_STARTUP"]);
        Assert.Equal("Never", job.Spec.Template.Spec.RestartPolicy);
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task ServiceAndDisruptionBudgetSelectTheApiPods(string overlay)
    {
        var objects = await Kustomize.LoadAsync(overlay);
        var podLabels = Api(objects).Spec.Template.Metadata.Labels;
        var service = objects.OfType<V1Service>().Single(s => s.Metadata.Name == "jackcwf-backend-service");
        var pdb = objects.OfType<V1PodDisruptionBudget>().Single(p => p.Metadata.Name == "jackcwf-backend");

        Assert.All(service.Spec.Selector, kv => Assert.Equal(kv.Value, podLabels[kv.Key]));
        Assert.All(pdb.Spec.Selector.MatchLabels, kv => Assert.Equal(kv.Value, podLabels[kv.Key]));
        Assert.Equal("http", service.Spec.Ports.Single().TargetPort.Value);
        Assert.Equal("1", pdb.Spec.MaxUnavailable.Value);
    }

    [Fact]
    public async Task RedisComponentPointsTheReplicasAtTheRedisServiceWithThePassword()
    {
        var objects = await Kustomize.LoadAsync("medium");
        var redisService = objects.OfType<V1Service>().Single(s => s.Metadata.Name == "jackcwf-redis");
        var env = Api(objects).Spec.Template.Spec.Containers.Single().Env;

        Assert.Equal($"redis://:$(REDIS_PASSWORD)@{redisService.Metadata.Name}:{redisService.Spec.Ports.Single().Port}", env.Single(e => e.Name == "REDIS_URL").Value);
        Assert.False(Config(objects).Data.ContainsKey("REDIS_URL"), "the URL carries the password: not in a ConfigMap");
    }

    [Fact]
    public async Task NetworkPolicyDeniesByDefaultAndAllowsOnlyWhatJackcwfNeeds()
    {
        var policies = (await Kustomize.LoadAsync("large")).OfType<V1NetworkPolicy>().ToDictionary(p => p.Metadata.Name);

        var deny = policies["default-deny-all"].Spec;
        Assert.Empty(deny.PodSelector.MatchLabels ?? new Dictionary<string, string>());
        Assert.Equal(["Ingress", "Egress"], deny.PolicyTypes);
        Assert.Null(deny.Ingress);
        Assert.Null(deny.Egress);

        var dnsPorts = policies["allow-dns"].Spec.Egress.Single().Ports.Select(p => (p.Protocol, p.Port.Value)).ToHashSet();
        Assert.Equal([("UDP", "53"), ("TCP", "53")], dnsPorts);

        var api = policies["jackcwf-api"].Spec;
        var monitoring = api.Ingress.Single(rule => rule.FromProperty.Any(f => f.NamespaceSelector.MatchExpressions.Single().Values.Contains("monitoring")));
        Assert.Equal("9464", monitoring.Ports.Single().Port.Value);
        Assert.All(api.Ingress.Where(r => r != monitoring), rule => Assert.Equal("8080", rule.Ports.Single().Port.Value));
        var egressPorts = api.Egress.SelectMany(e => e.Ports).Select(p => p.Port.Value).Order().ToList();
        Assert.Equal(["443", "5432", "6379"], egressPorts);

        var redis = policies["jackcwf-redis"].Spec;
        Assert.Equal("api", redis.Ingress.Single().FromProperty.Single().PodSelector.MatchLabels["app.kubernetes.io/component"]);
    }

    [Fact]
    public async Task IngressCarriesTheSeedsRateLimitCorsAndCertManagerAnnotations()
    {
        var ingress = (await Kustomize.LoadAsync("medium")).OfType<V1Ingress>().Single();
        var annotations = ingress.Metadata.Annotations;

        Assert.Equal("letsencrypt-prod", annotations["cert-manager.io/cluster-issuer"]);
        Assert.True(int.Parse(annotations["nginx.ingress.kubernetes.io/limit-rps"]) > 0);
        Assert.Equal("true", annotations["nginx.ingress.kubernetes.io/enable-cors"]);
        Assert.Equal("off", annotations["nginx.ingress.kubernetes.io/proxy-buffering"]);
        Assert.Contains("Last-Event-ID", annotations["nginx.ingress.kubernetes.io/cors-allow-headers"]);
        Assert.Equal("jackcwf-backend-service", ingress.Spec.Rules.Single().Http.Paths.Single().Backend.Service.Name);
        Assert.Equal(ingress.Spec.Rules.Single().Host, ingress.Spec.Tls.Single().Hosts.Single());
    }

    private static V1Deployment Api(List<object> objects) =>
        objects.OfType<V1Deployment>().Single(d => d.Metadata.Name == "jackcwf-backend");

    private static V1ConfigMap Config(List<object> objects) =>
        objects.OfType<V1ConfigMap>().Single(c => c.Metadata.Name == "jackcwf-config");

    private static int Seconds(V1ConfigMap config, string variable) =>
        config.Data.TryGetValue(variable, out var value) ? int.Parse(value) : ConfigurationContract.DefaultSeconds(variable);
}
