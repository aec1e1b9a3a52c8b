using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Jackcwf.DeploymentTests.Infrastructure;

namespace Jackcwf.DeploymentTests;

/// <summary>The vendored schemas are the unmodified upstream files listed in schemas/README.md.</summary>
public sealed partial class SchemaFileTests
{
    [Theory]
    [InlineData("compose-spec.json")]
    [InlineData("traefik-v3.json")]
    [InlineData("traefik-v3-file-provider.json")]
    [InlineData("cloudnative-pg/postgresql.cnpg.io_clusters.yaml")]
    [InlineData("cloudnative-pg/postgresql.cnpg.io_scheduledbackups.yaml")]
    [InlineData("cloudnative-pg/barmancloud.cnpg.io_objectstores.yaml")]
    public void VendoredSchemaMatchesTheRecordedHash(string file)
    {
        var readme = Repo.Read("tests", "Jackcwf.DeploymentTests", "schemas", "README.md");
        var row = readme.Split('\n').Single(l => l.StartsWith($"| `{file}`", StringComparison.Ordinal));
        var expected = Sha256().Match(row).Value;

        var actual = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Repo.SchemaPath(file))));

        Assert.Equal(expected, actual);
    }

    [GeneratedRegex("[0-9a-f]{64}")]
    private static partial Regex Sha256();
}
