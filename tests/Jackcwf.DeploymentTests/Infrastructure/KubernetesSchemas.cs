namespace Jackcwf.DeploymentTests.Infrastructure;

/// <summary>
/// Type and required-field validation with the npm kubernetes-models schemas (k8s-schema/validate.mjs).
/// Those schemas accept unknown fields, so this complements the strict C# load; it does not replace it.
/// </summary>
public static class KubernetesSchemas
{
    private static readonly SemaphoreSlim InstallLock = new(1, 1);
    private static bool installed;

    private static string Folder => Repo.PathOf("tests", "Jackcwf.DeploymentTests", "k8s-schema");

    public static async Task<ToolResult> ValidateAsync(string yaml)
    {
        var node = Tool.Require("node", "install Node.js 20+ (the web build needs it too)");
        await EnsureInstalledAsync();
        var file = Path.Combine(Path.GetTempPath(), $"jackcwf-k8s-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(file, yaml);
        try
        {
            return await Tool.RunAsync(node, [Path.Combine(Folder, "validate.mjs"), file], Folder);
        }
        finally
        {
            File.Delete(file);
        }
    }

    private static async Task EnsureInstalledAsync()
    {
        await InstallLock.WaitAsync();
        try
        {
            var marker = Path.Combine(Folder, "node_modules", ".package-lock.json");
            if (installed || (File.Exists(marker) && File.GetLastWriteTimeUtc(marker) >= File.GetLastWriteTimeUtc(Path.Combine(Folder, "package-lock.json"))))
            {
                installed = true;
                return;
            }
            var npm = Tool.Require("npm", "install Node.js 20+ with npm");
            var result = await Tool.RunAsync(npm, ["ci", "--no-audit", "--no-fund", "--ignore-scripts"], Folder, timeout: TimeSpan.FromMinutes(3));
            Assert.True(result.ExitCode == 0, $"npm ci in {Folder} failed:\n{result.Output}");
            installed = true;
        }
        finally
        {
            InstallLock.Release();
        }
    }
}
