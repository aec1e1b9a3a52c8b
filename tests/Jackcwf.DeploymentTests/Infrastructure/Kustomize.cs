using k8s;

namespace Jackcwf.DeploymentTests.Infrastructure;

/// <summary>Renders the Kustomize trees with `kubectl kustomize` and loads the result strictly.</summary>
public static class Kustomize
{
    public static readonly string[] Overlays = ["small", "medium", "large"];

    /// <summary>
    /// Components rendered together on top of the base. redis-sentinel replaces redis (same Service
    /// and Secret names), so it is rendered through the large overlay instead.
    /// </summary>
    public static readonly string[] Components = ["redis", "ingress", "gateway-api", "monitoring", "network-policy", "cloudnative-pg", "pg-dump-backup"];

    /// <summary>Custom resource kinds, keyed "apiVersion/kind" as KubernetesYaml expects.</summary>
    public static readonly IDictionary<string, Type> CustomResourceTypes = new Dictionary<string, Type>
    {
        ["monitoring.coreos.com/v1/ServiceMonitor"] = typeof(ServiceMonitor),
        ["monitoring.coreos.com/v1/PrometheusRule"] = typeof(PrometheusRule),
        ["gateway.networking.k8s.io/v1/HTTPRoute"] = typeof(HttpRoute),
        ["monitoring.coreos.com/v1/PodMonitor"] = typeof(PodMonitor),
        ["postgresql.cnpg.io/v1/Cluster"] = typeof(CnpgCluster),
        ["postgresql.cnpg.io/v1/ScheduledBackup"] = typeof(CnpgScheduledBackup),
        ["barmancloud.cnpg.io/v1/ObjectStore"] = typeof(BarmanObjectStore),
    };

    private static readonly Dictionary<string, Task<string>> Rendered = [];

    public static string KubernetesDir => Repo.PathOf("deployment", "kubernetes");

    /// <summary>"base", an overlay name, or an absolute path of a kustomization folder.</summary>
    public static Task<string> RenderAsync(string target)
    {
        var dir = Path.IsPathRooted(target) ? target
            : target == "base" ? Path.Combine(KubernetesDir, "base")
            : Path.Combine(KubernetesDir, "overlays", target);
        lock (Rendered)
        {
            if (!Rendered.TryGetValue(dir, out var task))
            {
                task = RenderUncachedAsync(dir);
                Rendered[dir] = task;
            }
            return task;
        }
    }

    private static readonly Lazy<string> EveryComponentDir = new(WriteEveryComponentKustomization);

    /// <summary>Base plus every component, so each component is rendered and validated at least once.</summary>
    public static Task<string> RenderEveryComponentAsync() => RenderAsync(EveryComponentDir.Value);

    private static string WriteEveryComponentKustomization()
    {
        var dir = Directory.CreateTempSubdirectory("jackcwf-kustomize-").FullName;
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Directory.Delete(dir, recursive: true);
        var rel = Path.GetRelativePath(dir, KubernetesDir).Replace('\\', '/');
        File.WriteAllText(Path.Combine(dir, "kustomization.yaml"), $"""
            apiVersion: kustomize.config.k8s.io/v1beta1
            kind: Kustomization
            resources:
              - {rel}/base
            components:
            {string.Join("\n", Components.Select(c => $"  - {rel}/components/{c}"))}
            """);
        return dir;
    }

    public static List<object> LoadStrict(string yaml) =>
        KubernetesYaml.LoadAllFromString(yaml, CustomResourceTypes, strict: true);

    public static async Task<List<object>> LoadAsync(string target) => LoadStrict(await RenderAsync(target));

    private static async Task<string> RenderUncachedAsync(string dir)
    {
        var kubectl = Tool.Require("kubectl", "install kubectl (it bundles kustomize), e.g. from https://dl.k8s.io or the Google Cloud SDK");
        var result = await Tool.RunAsync(kubectl, ["kustomize", dir]);
        Assert.True(result.ExitCode == 0, $"kubectl kustomize {dir} failed:\n{result.StdErr}");
        return result.StdOut;
    }
}
