using System.Net;
using System.Text.Json;

namespace Jackcwf.OidcTests;

/// <summary>What the web app's sign-in screen learns from <c>GET /api/auth/providers</c>.</summary>
public sealed class ProviderListTests(OidcFixture env)
{
    [Fact]
    public async Task ConfiguredProviderIsListedWithItsDisplayNameAndLoginUrl()
    {
        using var client = env.Main.CreateClient();
        var json = await client.GetStringAsync("api/auth/providers");

        Assert.Equal("""[{"name":"oidc","displayName":"Test SSO","loginUrl":"/api/auth/external/oidc?returnUrl=/"}]""", Compact(json));
    }

    [Fact]
    public async Task ProviderWithoutDisplayNameIsCalledSingleSignOn()
    {
        using var client = env.Proxied.CreateClient();
        var json = await client.GetStringAsync("api/auth/providers");

        Assert.Equal("""[{"name":"oidc","displayName":"Single sign-on","loginUrl":"/api/auth/external/oidc?returnUrl=/"}]""", Compact(json));
    }

    [Fact]
    public async Task WithoutConfigurationTheListIsEmptyAndSignInIsNotFound()
    {
        using var client = env.Unconfigured.CreateClient();
        var list = await client.GetAsync("api/auth/providers");
        var start = await client.GetAsync("api/auth/external/oidc?returnUrl=/");

        Assert.Equal(HttpStatusCode.OK, list.StatusCode);
        Assert.Equal("[]", Compact(await list.Content.ReadAsStringAsync()));
        Assert.Equal(HttpStatusCode.NotFound, start.StatusCode);
        Assert.Equal("application/problem+json", start.Content.Headers.ContentType?.MediaType);
    }

    private static string Compact(string json) => JsonSerializer.Serialize(JsonDocument.Parse(json).RootElement);
}
