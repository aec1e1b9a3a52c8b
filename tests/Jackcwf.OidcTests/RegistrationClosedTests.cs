namespace Jackcwf.OidcTests;

/// <summary>With ALLOW_REGISTRATION=false the provider can sign in existing people only.</summary>
public sealed class RegistrationClosedTests(OidcFixture env)
{
    private Uri Service => env.Closed.BaseUrl;

    [Fact]
    public async Task NewProviderUserIsRefusedWhenRegistrationIsClosed()
    {
        using var browser = new Browser();
        var landed = await SignInFlow.SignInAsync(browser, Service, OidcFixture.Users.Carol);

        Assert.Equal(new Uri(Service, "/?login_error=registration_closed"), landed.Url);
        Assert.DoesNotContain(browser.SetCookieLog, c => c.Header.StartsWith("jackcwf.session=", StringComparison.Ordinal));
        Assert.Null(await SignInFlow.MeAsync(browser, Service));
    }

    [Fact]
    public async Task ExistingAccountWithTheVerifiedEmailStillSignsInWhenRegistrationIsClosed()
    {
        using var passwordClient = OidcFixture.BearerClient(env.Closed, await OidcFixture.PasswordLoginAsync(env.Closed, OidcFixture.ClosedLocalEmail));
        var local = await System.Net.Http.Json.HttpClientJsonExtensions.GetFromJsonAsync<Me>(passwordClient, "api/me");

        using var browser = new Browser();
        var landed = await SignInFlow.SignInAsync(browser, Service, OidcFixture.Users.Dave);

        Assert.Equal(new Uri(Service, "/"), landed.Url);
        Assert.Equal(local!.Id, (await SignInFlow.MeAsync(browser, Service))?.Id);
    }
}
