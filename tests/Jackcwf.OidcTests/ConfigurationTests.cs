namespace Jackcwf.OidcTests;

/// <summary>A half-done OpenID Connect configuration stops the service at start with a message naming the variables.</summary>
public sealed class ConfigurationTests
{
    [Fact]
    public async Task AuthorityWithoutClientIdStopsTheServiceNamingBothVariables()
    {
        var result = await ApiProcess.RunCommandAsync([], new ApiProcessOptions
        {
            Environment = new Dictionary<string, string?>
            {
                ["OIDC_AUTHORITY"] = "https://login.example.test/realms/main",
                ["OIDC_CLIENT_ID"] = null,
                ["OIDC_CLIENT_SECRET"] = OidcFixture.ClientSecret,
                ["DATABASE_URL"] = null,
                ["REDIS_URL"] = null,
                ["ENABLE_MONITORING"] = "false",
            },
        }, TimeSpan.FromMinutes(3));

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("Configuration error: OIDC_AUTHORITY and OIDC_CLIENT_ID must be set together", result.Output);
        Assert.DoesNotContain(OidcFixture.ClientSecret, result.Output);
    }
}
