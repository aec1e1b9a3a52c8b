namespace Jackcwf.OidcTests;

/// <summary>Behind a TLS-terminating load balancer the provider must send the user back to the public address.</summary>
public sealed class ProxyTests(OidcFixture env)
{
    [Fact]
    public async Task ForwardedProtoAndHostShapeTheRedirectUri()
    {
        var publicOrigin = OidcFixture.ForwardedOrigin;
        using var browser = new Browser();
        browser.MapThroughProxy(publicOrigin, env.Main.BaseUrl,
            new Dictionary<string, string> { ["X-Forwarded-Proto"] = "https", ["X-Forwarded-Host"] = publicOrigin.Authority });

        var landed = await SignInFlow.SignInAsync(browser, publicOrigin, OidcFixture.Users.Xavier);

        var asked = (await env.Provider.GrantedAuthorizationAsync(OidcFixture.Users.Xavier.Sub)).GetProperty("params");
        Assert.Equal(new Uri(publicOrigin, "api/auth/external/oidc/callback").ToString(), asked.GetProperty("redirect_uri").GetString());
        Assert.Equal(new Uri(publicOrigin, "/"), landed.Url);
        Assert.Equal(OidcFixture.Users.Xavier.Email, (await SignInFlow.MeAsync(browser, publicOrigin))?.Email);
    }

    [Fact]
    public async Task RedirectUriTheProviderDoesNotKnowEndsInAnErrorNotA500()
    {
        using var client = env.Main.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "api/auth/external/oidc?returnUrl=/");
        request.Headers.Add("X-Forwarded-Proto", "https");
        request.Headers.Add("X-Forwarded-Host", "unregistered.example.test");
        using var response = await client.SendAsync(request);

        Assert.Equal(System.Net.HttpStatusCode.Redirect, response.StatusCode);
        Assert.Equal("/?login_error=external_login_failed", response.Headers.Location?.OriginalString);
    }

    [Fact]
    public async Task PublicBaseUrlSignInWorksEndToEndWithSecureCookiesAndTheFirstAccountIsAdministrator()
    {
        var publicOrigin = OidcFixture.ProxiedOrigin;
        using var browser = new Browser();
        // The proxy tells the service the request was https but passes the backend's own Host header.
        browser.MapThroughProxy(publicOrigin, env.Proxied.BaseUrl, new Dictionary<string, string> { ["X-Forwarded-Proto"] = "https" });

        var landed = await SignInFlow.SignInAsync(browser, publicOrigin, OidcFixture.Users.Frank);

        var asked = (await env.Provider.GrantedAuthorizationAsync(OidcFixture.Users.Frank.Sub)).GetProperty("params");
        Assert.Equal(new Uri(publicOrigin, OidcFixture.ProxiedCallbackPath).ToString(), asked.GetProperty("redirect_uri").GetString());
        Assert.Contains(browser.History, u => u == new Uri(publicOrigin, OidcFixture.ProxiedCallbackPath + u.Query) && u.Query.Contains("code="));
        Assert.Equal(new Uri(publicOrigin, "/"), landed.Url);
        var session = Assert.Single(browser.SetCookieLog, c => c.Header.StartsWith("jackcwf.session=", StringComparison.Ordinal)).Header;
        Assert.Contains("secure", session, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("httponly", session, StringComparison.OrdinalIgnoreCase);
        var me = await SignInFlow.MeAsync(browser, publicOrigin);
        Assert.Equal(OidcFixture.Users.Frank.Email, me?.Email);
        Assert.True(me!.IsAdmin, "the first account of a service becomes its administrator, also when it comes from the provider");
    }
}
