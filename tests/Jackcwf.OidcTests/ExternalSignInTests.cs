using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Jackcwf.OidcTests;

/// <summary>Signing in to the service with the provider: accounts found, created, linked and refused.</summary>
public sealed class ExternalSignInTests(OidcFixture env)
{
    private Uri Service => env.Main.BaseUrl;

    [Fact]
    public async Task SignInUsesTheAuthorizationCodeFlowWithPkce()
    {
        using var browser = new Browser();
        var start = await browser.GetAsync(new Uri(Service, "api/auth/external/oidc?returnUrl=/"), followRedirects: false);

        Assert.Equal(HttpStatusCode.Redirect, start.Status);
        Assert.Equal(new Uri(env.Provider.Issuer, "/auth"), new Uri(start.Location!.GetLeftPart(UriPartial.Path)));
        var frontChannel = SignInFlow.Query(start.Location);
        Assert.Equal(OidcFixture.ClientId, frontChannel["client_id"]);
        // The provider offers pushed authorization requests (RFC 9126): the parameters went over the back
        // channel and the browser only carries a reference to them.
        Assert.StartsWith("urn:ietf:params:oauth:request_uri:", frontChannel["request_uri"]);
        Assert.DoesNotContain("code_challenge", frontChannel.Keys);
        // The correlation cookie must survive the top-level GET back from the provider, and scripts cannot read it.
        var correlation = Assert.Single(start.SetCookies, c => c.StartsWith(".AspNetCore.Correlation.", StringComparison.Ordinal));
        Assert.Contains("httponly", correlation, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=lax", correlation, StringComparison.OrdinalIgnoreCase);

        await SignInFlow.SignInAsync(browser, Service, OidcFixture.Users.Paula);
        var granted = await env.Provider.GrantedAuthorizationAsync(OidcFixture.Users.Paula.Sub);
        var asked = granted.GetProperty("params");

        Assert.Equal("code", asked.GetProperty("response_type").GetString());
        // The code comes back in the query string: response_mode=query, or no response_mode (the default for code).
        Assert.True(!asked.TryGetProperty("response_mode", out var mode) || mode.GetString() == "query", $"response_mode {mode}");
        Assert.Equal(["email", "openid", "profile"], asked.GetProperty("scope").GetString()!.Split(' ').Order());
        Assert.Equal("S256", asked.GetProperty("code_challenge_method").GetString());
        Assert.Matches("^[A-Za-z0-9_-]{43}$", asked.GetProperty("code_challenge").GetString());
        Assert.Equal(new Uri(Service, "api/auth/external/oidc/callback").ToString(), asked.GetProperty("redirect_uri").GetString());
        Assert.False(string.IsNullOrEmpty(asked.GetProperty("nonce").GetString()));
        Assert.Equal(OidcFixture.Users.Paula.Email, (await SignInFlow.MeAsync(browser, Service))?.Email);
    }

    [Fact]
    public async Task NewProviderUserGetsALocalAccountAndTheSameOneOnTheNextSignIn()
    {
        var alice = OidcFixture.Users.Alice;
        using var first = new Browser();
        var landed = await SignInFlow.SignInAsync(first, Service, alice);

        Assert.Equal(HttpStatusCode.OK, landed.Status);
        Assert.Equal(new Uri(Service, "/"), landed.Url);
        var session = Assert.Single(first.SetCookieLog, c => c.Header.StartsWith("jackcwf.session=", StringComparison.Ordinal)).Header;
        Assert.Contains("httponly", session, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=lax", session, StringComparison.OrdinalIgnoreCase);
        var me = await SignInFlow.MeAsync(first, Service);
        Assert.NotNull(me);
        Assert.Equal(alice.Email, me!.Email);
        Assert.False(me.IsAdmin);
        // The temporary external cookie is gone once the local session exists.
        Assert.DoesNotContain(first.Cookies.GetAllCookies(), c => c.Name.StartsWith("Identity.External", StringComparison.Ordinal) && !c.Expired);

        using var second = new Browser();
        await SignInFlow.SignInAsync(second, Service, alice);
        var again = await SignInFlow.MeAsync(second, Service);
        Assert.Equal(me.Id, again?.Id);
        Assert.Single(await UsersWithEmailAsync(alice.Email!));
    }

    [Fact]
    public async Task Hole02_Sso_LinksOnlyToALocalAccountWhoseEmailIsConfirmed()
    {
        // Anyone can register a password account under the victim's address before the victim ever signs in.
        var bob = OidcFixture.Users.Bob;
        await OidcFixture.RegisterAsync(env.Main, bob.Email!);
        using var passwordClient = OidcFixture.BearerClient(env.Main, await OidcFixture.PasswordLoginAsync(env.Main, bob.Email!));
        var local = await passwordClient.GetFromJsonAsync<Me>("api/me");

        using (var refused = new Browser())
        {
            var landed = await SignInFlow.SignInAsync(refused, Service, bob);
            Assert.Equal(new Uri(Service, "/?login_error=local_email_unconfirmed"), landed.Url);
            Assert.Null(await SignInFlow.MeAsync(refused, Service));
        }
        Assert.Single(await UsersWithEmailAsync(bob.Email!));

        // Once the local account has proven it owns the address, the provider's user links to it.
        await OidcFixture.ConfirmEmailAsync(env.Main, bob.Email!);
        using var browser = new Browser();
        await SignInFlow.SignInAsync(browser, Service, bob);
        var me = await SignInFlow.MeAsync(browser, Service);

        Assert.Equal(local!.Id, me?.Id);
        Assert.Single(await UsersWithEmailAsync(bob.Email!));
        // The password still works for the same account.
        await OidcFixture.PasswordLoginAsync(env.Main, bob.Email!);
    }

    [Fact]
    public async Task UnverifiedEmailMatchingALocalAccountIsRefused()
    {
        var mallory = OidcFixture.Users.Mallory;
        await OidcFixture.RegisterAsync(env.Main, mallory.Email!);

        using var browser = new Browser();
        var landed = await SignInFlow.SignInAsync(browser, Service, mallory);

        Assert.Equal(new Uri(Service, "/?login_error=email_not_verified"), landed.Url);
        Assert.Null(await SignInFlow.MeAsync(browser, Service));
        Assert.Single(await UsersWithEmailAsync(mallory.Email!));
    }

    [Fact]
    public async Task ProviderUserWithoutEmailIsRefused()
    {
        using var browser = new Browser();
        var landed = await SignInFlow.SignInAsync(browser, Service, OidcFixture.Users.Nora);

        Assert.Equal(new Uri(Service, "/?login_error=email_required"), landed.Url);
        Assert.Null(await SignInFlow.MeAsync(browser, Service));
    }

    [Theory]
    [InlineData("https://evil.example/")]
    [InlineData("//evil.example/")]
    [InlineData("/\\evil.example/")]
    [InlineData("http:evil.example")]
    public async Task ReturnUrlOutsideTheSiteIsIgnored(string returnUrl)
    {
        using var browser = new Browser();
        var landed = await SignInFlow.SignInAsync(browser, Service, OidcFixture.Users.Olivia, returnUrl);

        Assert.Equal(new Uri(Service, "/"), landed.Url);
        Assert.All(browser.History, u => Assert.Equal("127.0.0.1", u.Host));
        Assert.Equal(OidcFixture.Users.Olivia.Email, (await SignInFlow.MeAsync(browser, Service))?.Email);
    }

    [Fact]
    public async Task LocalReturnUrlIsWhereTheUserLands()
    {
        using var browser = new Browser();
        var landed = await SignInFlow.SignInAsync(browser, Service, OidcFixture.Users.Rita, "/c/0197a1b2-resume?tab=2");

        Assert.Equal(new Uri(Service, "/c/0197a1b2-resume?tab=2"), landed.Url);
        Assert.Equal(OidcFixture.Users.Rita.Email, (await SignInFlow.MeAsync(browser, Service))?.Email);
    }

    [Fact]
    public async Task DisabledAccountCannotSignInWithTheProvider()
    {
        var erin = OidcFixture.Users.Erin;
        using var before = new Browser();
        await SignInFlow.SignInAsync(before, Service, erin);
        var me = await SignInFlow.MeAsync(before, Service);
        Assert.NotNull(me);
        using var admin = OidcFixture.BearerClient(env.Main, env.AdminToken);
        var disable = await admin.PostAsync($"api/admin/users/{me!.Id}/disable", null);
        Assert.True(disable.IsSuccessStatusCode, $"disable: {(int)disable.StatusCode}");

        using var after = new Browser();
        var landed = await SignInFlow.SignInAsync(after, Service, erin);

        Assert.Equal(new Uri(Service, "/?login_error=account_disabled"), landed.Url);
        Assert.Null(await SignInFlow.MeAsync(after, Service));
    }

    [Fact]
    public async Task WrongPasswordAtTheProviderGivesNoSession()
    {
        using var browser = new Browser();
        var login = await SignInFlow.OpenProviderLoginAsync(browser, Service);
        var again = await browser.SubmitFormAsync(login, new Dictionary<string, string> { ["login"] = "alice", ["password"] = "not-her-password" });

        Assert.Equal(HttpStatusCode.Unauthorized, again.Status);
        Assert.Contains("Wrong login or password", again.Body);
        Assert.Null(await SignInFlow.MeAsync(browser, Service));
    }

    [Fact]
    public async Task CancellingAtTheProviderReturnsToTheAppWithAnError()
    {
        using var browser = new Browser();
        var login = await SignInFlow.OpenProviderLoginAsync(browser, Service);
        var abort = Regex.Match(login.Body, "href=\"(?<href>/interaction/[^\"]+/abort)\"").Groups["href"].Value;
        var landed = await browser.GetAsync(new Uri(login.Url, abort));

        Assert.Equal(new Uri(Service, "/?login_error=external_login_failed"), landed.Url);
        Assert.Null(await SignInFlow.MeAsync(browser, Service));
    }

    [Fact]
    public async Task ForgedCallbacksAreRefusedWithoutAnError500()
    {
        using var browser = new Browser();
        var callback = await browser.GetAsync(new Uri(Service, "api/auth/external/oidc/callback?code=stolen&state=forged"));
        var complete = await browser.GetAsync(new Uri(Service, "api/auth/external/oidc/complete"));

        Assert.Equal(new Uri(Service, "/?login_error=external_login_failed"), callback.Url);
        Assert.Equal(new Uri(Service, "/?login_error=external_login_failed"), complete.Url);
        Assert.Null(await SignInFlow.MeAsync(browser, Service));
        Assert.DoesNotContain("Unhandled exception", env.Main.Logs);
    }

    [Fact]
    public async Task SignInsAreCountedAndTheClientSecretNeverShows()
    {
        using var ok = new Browser();
        await SignInFlow.SignInAsync(ok, Service, OidcFixture.Users.Mia);
        using var refused = new Browser();
        await SignInFlow.SignInAsync(refused, Service, OidcFixture.Users.Nora);

        using var client = env.Main.CreateClient();
        var metrics = await client.GetStringAsync("metrics");
        Assert.True(Counter(metrics, "success") >= 1, metrics);
        Assert.True(Counter(metrics, "failure") >= 1, metrics);
        Assert.DoesNotContain(OidcFixture.ClientSecret, metrics);
        Assert.DoesNotContain(OidcFixture.ClientSecret, env.Main.Logs);
    }

    private static double Counter(string metrics, string result) =>
        Regex.Matches(metrics, @"^jackcwf_logins_total\{(?<labels>[^}]*)\} (?<value>\S+)", RegexOptions.Multiline)
            .Where(m => m.Groups["labels"].Value.Contains("method=\"oidc\"") && m.Groups["labels"].Value.Contains($"result=\"{result}\""))
            .Sum(m => double.Parse(m.Groups["value"].Value, System.Globalization.CultureInfo.InvariantCulture));

    private async Task<List<JsonElement>> UsersWithEmailAsync(string email)
    {
        using var admin = OidcFixture.BearerClient(env.Main, env.AdminToken);
        var list = await admin.GetFromJsonAsync<JsonElement>("api/admin/users");
        return [.. list.GetProperty("items").EnumerateArray().Where(u => string.Equals(u.GetProperty("email").GetString(), email, StringComparison.OrdinalIgnoreCase))];
    }
}
