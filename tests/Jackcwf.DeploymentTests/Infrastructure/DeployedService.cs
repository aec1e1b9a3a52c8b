using Jackcwf.Testing;
using k8s.Models;

namespace Jackcwf.DeploymentTests.Infrastructure;

/// <summary>
/// The built service run the way the Kubernetes manifests run it, on loopback with SQLite: first the
/// migration Job's command, then the replica with the medium overlay's ConfigMap (MIGRATE_ON_STARTUP=false).
/// </summary>
public sealed class DeployedService : IAsyncLifetime
{
    // This project's fixed ports (kept apart from the other test projects' ranges).
    private const int FirstPort = 19500;
    private const int LastPort = 19999;

    public ApiProcess Api { get; private set; } = null!;

    /// <summary>Where the replica serves /metrics (the ConfigMap's METRICS_PORT, moved to a free port).</summary>
    public int MetricsPort { get; } = FreePort();

    public ApiCommandResult Migration { get; private set; } = null!;

    public V1ConfigMap ConfigMap { get; private set; } = null!;

    public string WorkingDirectory { get; } = Directory.CreateTempSubdirectory("jackcwf-deploy-").FullName;

    public async ValueTask InitializeAsync()
    {
        ConfigMap = (await Kustomize.LoadAsync("medium")).OfType<V1ConfigMap>().Single();
        var environment = Environment();
        environment["METRICS_PORT"] = MetricsPort.ToString();

        Migration = await ApiProcess.RunCommandAsync(["migrate"], Options(environment, FreePort(exclude: MetricsPort)), TimeSpan.FromMinutes(2));
        Api = await ApiProcess.StartAsync(Options(environment, FreePort(exclude: MetricsPort)));
    }

    /// <summary>The ConfigMap's settings for a single replica without Redis or PostgreSQL.</summary>
    public Dictionary<string, string?> Environment(int? port = null)
    {
        var environment = ConfigMap.Data.ToDictionary(kv => kv.Key, kv => (string?)kv.Value);
        environment["REDIS_URL"] = null;      // no Redis here: the single-replica in-process backplane
        environment["DATABASE_URL"] = null;   // SQLite in the working directory
        environment["PORT"] = port?.ToString();  // the listener is ASPNETCORE_URLS (loopback)
        // 9464 in the ConfigMap; a free one here, another one for each extra replica a test starts.
        environment["METRICS_PORT"] = FreePort(exclude: port ?? MetricsPort).ToString();
        return environment;
    }

    public ApiProcessOptions Options(Dictionary<string, string?> environment, int port) => new()
    {
        Environment = environment,
        Port = port,
        WorkingDirectory = WorkingDirectory,
    };

    public static int FreePort(int? exclude = null) => Jackcwf.Testing.FreePort.InRange(FirstPort, LastPort + 1, exclude);

    public async ValueTask DisposeAsync()
    {
        if (Api is not null) await Api.DisposeAsync();
        try
        {
            Directory.Delete(WorkingDirectory, recursive: true);
        }
        catch (IOException)
        {
            // Released a moment later; the temp folder is cleaned by the OS.
        }
    }
}
