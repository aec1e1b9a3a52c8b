namespace Jackcwf.Testing;

/// <summary>Locations inside the repository, found from the running test assembly.</summary>
public static class RepoPaths
{
    private static readonly Lazy<string> LazyRoot = new(FindRoot);

    /// <summary>The first ancestor of the test binaries that holds <c>Jackcwf.slnx</c>.</summary>
    public static string Root => LazyRoot.Value;

    /// <summary>The built service: <c>JACKCWF_API_DLL</c> when set, else the Release build output.</summary>
    public static string ApiDll
    {
        get
        {
            var fromEnvironment = Environment.GetEnvironmentVariable("JACKCWF_API_DLL");
            return string.IsNullOrWhiteSpace(fromEnvironment)
                ? Path.Combine(Root, "src", "Jackcwf.Api", "bin", "Release", "net10.0", "Jackcwf.Api.dll")
                : Path.GetFullPath(fromEnvironment);
        }
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Jackcwf.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException(
            $"No folder containing Jackcwf.slnx above {AppContext.BaseDirectory}; tests must run from inside the repository.");
    }
}
