using Jackcwf.Testing;

namespace Jackcwf.DeploymentTests.Infrastructure;

/// <summary>Paths inside the repository (<see cref="RepoPaths.Root"/>: the folder that holds Jackcwf.slnx).</summary>
public static class Repo
{
    public static string Root => RepoPaths.Root;

    public static string PathOf(params string[] parts) => Path.Combine([Root, .. parts]);

    public static string Read(params string[] parts)
    {
        var path = PathOf(parts);
        Assert.True(File.Exists(path), $"Expected file {Path.GetRelativePath(Root, path)} to exist.");
        return File.ReadAllText(path);
    }

    /// <summary>
    /// The vendored schema beside the test binary; if a copy is missing there, the shared read-only
    /// copy that CI places next to the clone (<c>&lt;repo&gt;/../shared/schemas</c>).
    /// </summary>
    public static string SchemaPath(string fileName)
    {
        string[] candidates =
        [
            Path.Combine(AppContext.BaseDirectory, "schemas", fileName),
            PathOf("tests", "Jackcwf.DeploymentTests", "schemas", fileName),
            Path.GetFullPath(Path.Combine(Root, "..", "shared", "schemas", fileName)),
        ];
        return candidates.FirstOrDefault(File.Exists)
            ?? throw new FileNotFoundException($"Schema {fileName} not found in: {string.Join(", ", candidates)}");
    }

    /// <summary>Every file under the repository with one of the extensions, skipping build output, dependencies and git.</summary>
    public static IEnumerable<string> FilesWithExtension(params string[] extensions)
    {
        var skip = new HashSet<string>(StringComparer.Ordinal) { ".git", "node_modules", "bin", "obj", "TestResults", ".test-run", "artifacts" };
        var pending = new Stack<string>([Root]);
        while (pending.Count > 0)
        {
            var dir = pending.Pop();
            foreach (var sub in Directory.EnumerateDirectories(dir))
            {
                if (!skip.Contains(Path.GetFileName(sub))) pending.Push(sub);
            }
            foreach (var file in Directory.EnumerateFiles(dir))
            {
                if (extensions.Any(e => file.EndsWith(e, StringComparison.Ordinal))) yield return file;
            }
        }
    }
}
