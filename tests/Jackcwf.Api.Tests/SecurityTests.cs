using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Jackcwf.Testing;

namespace Jackcwf.Api.Tests;

/// <summary>
/// Open registration with the account throttles low enough to reach. Each test speaks from its own
/// client address: the service trusts X-Forwarded-For from loopback (FORWARDED_TRUSTED_NETWORKS'
/// default), like from Traefik or the load balancer.
/// </summary>
public sealed class SecurityServiceFixture : ServiceFixture
{
    public const int RequestsPerMinute = 30;
    public const int Registrations = 40;
    public const int ApiKeyFailures = 5;
    public const int EmailsPerHour = 3;

    protected override Task<IReadOnlyDictionary<string, string?>> DatabaseAsync() =>
        Task.FromResult<IReadOnlyDictionary<string, string?>>(new Dictionary<string, string?> { ["DATABASE_URL"] = null });

    protected override IReadOnlyDictionary<string, string?> ExtraEnvironment => new Dictionary<string, string?>
    {
        ["AUTH_RATE_LIMIT_PER_MINUTE"] = RequestsPerMinute.ToString(),
        ["AUTH_REGISTRATIONS_PER_HOUR"] = Registrations.ToString(),
        ["API_KEY_FAILURES_PER_MINUTE"] = ApiKeyFailures.ToString(),
        ["AUTH_EMAILS_PER_HOUR"] = EmailsPerHour.ToString(),
    };
}

public sealed class SecurityTests(SecurityServiceFixture fx) : IClassFixture<SecurityServiceFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A client that the service sees as coming from <paramref name="ip"/> (through a trusted proxy).</summary>
    private HttpClient From(string ip, string? bearer = null)
    {
        var c = fx.Api.CreateClient();
        c.DefaultRequestHeaders.Add("X-Forwarded-For", ip);
        if (bearer is not null)
        {
            c.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }
        return c;
    }

    private static string NewIp() => $"203.0.113.{Random.Shared.Next(1, 254)}";

    private static async Task AssertThrottledAsync(HttpResponseMessage r, TimeSpan atMost)
    {
        var body = await r.Content.ReadAsStringAsync(Ct);
        Assert.True(r.StatusCode == HttpStatusCode.TooManyRequests, $"expected 429, got {(int)r.StatusCode} {body}");
        Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
        var wait = r.Headers.RetryAfter?.Delta;
        Assert.True(wait is { } w && w > TimeSpan.Zero && w <= atMost, $"Retry-After {wait} should be within {atMost}");
    }

    private async Task<string> CreateKeyAsync(TestUser u)
    {
        var r = await u.Http.PostAsJsonAsync("api/keys", new { name = "k" }, Ct);
        Assert.Equal(HttpStatusCode.Created, r.StatusCode);
        return (await r.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("key").GetString()!;
    }

    [Fact]
    public async Task Hole04_RegistrationRefreshAndPasswordReset_AreThrottledPerAddress_With429AndRetryAfter()
    {
        using var spammer = From("203.0.113.201");
        for (var i = 0; i < SecurityServiceFixture.Registrations; i++)
        {
            var r = await spammer.PostAsJsonAsync("api/auth/register", new { email = $"spam{i}@example.com", password = "short" }, Ct);
            Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        }
        await AssertThrottledAsync(await spammer.PostAsJsonAsync("api/auth/register", new { email = "one-more@example.com", password = "Passw0rd-ok" }, Ct), TimeSpan.FromHours(1));
        // Another address is not affected.
        Assert.Equal(HttpStatusCode.BadRequest, (await From("203.0.113.202").PostAsJsonAsync("api/auth/register", new { email = "x@example.com", password = "short" }, Ct)).StatusCode);

        using var refresher = From("203.0.113.203");
        for (var i = 0; i < SecurityServiceFixture.RequestsPerMinute; i++)
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await refresher.PostAsJsonAsync("api/auth/refresh", new { refreshToken = "forged" + i }, Ct)).StatusCode);
        }
        await AssertThrottledAsync(await refresher.PostAsJsonAsync("api/auth/refresh", new { refreshToken = "forged" }, Ct), TimeSpan.FromMinutes(1));

        // Reset emails to one account are limited wherever they are asked from, so nobody can flood a mailbox.
        var victim = await fx.CreateUserAsync();
        for (var i = 0; i < SecurityServiceFixture.EmailsPerHour; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await From($"198.51.100.{10 + i}").PostAsJsonAsync("api/auth/forgotPassword", new { email = victim.Email }, Ct)).StatusCode);
        }
        await AssertThrottledAsync(await From("198.51.100.99").PostAsJsonAsync("api/auth/forgotPassword", new { email = victim.Email.ToUpperInvariant() }, Ct), TimeSpan.FromHours(1));
    }

    [Fact]
    public async Task Hole05_ApiKeys_ReachOnlyTheGatewayAndTheConversationsApi_NeverAccountKeyOrAdminRoutes()
    {
        // The administrator's key is the worst case: it must not reach the administration routes either.
        var key = await CreateKeyAsync(fx.Admin);
        using var k = fx.Api.CreateClient();
        k.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);

        Assert.Equal(HttpStatusCode.OK, (await k.GetAsync("v1/models", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await k.GetAsync("api/conversations", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await k.PostAsJsonAsync("api/conversations", new { }, Ct)).StatusCode);

        var refused = new List<HttpResponseMessage>
        {
            await k.GetAsync("api/keys", Ct),
            await k.PostAsJsonAsync("api/keys", new { name = "minted by a key" }, Ct),
            await k.GetAsync("api/auth/manage/info", Ct),
            await k.PostAsJsonAsync("api/auth/manage/info", new { newPassword = "Hijacked-Passw0rd", oldPassword = fx.Admin.Password }, Ct),
            await k.PostAsJsonAsync("api/auth/manage/2fa", new { enable = true }, Ct),
            await k.GetAsync("api/admin/users", Ct),
            await k.PostAsync($"api/admin/users/{Guid.NewGuid()}/disable", null, Ct),
            await k.GetAsync("API/ADMIN/USERS/", Ct),
            await k.GetAsync("api/usage", Ct),
        };
        foreach (var r in refused)
        {
            var body = await r.Content.ReadAsStringAsync(Ct);
            Assert.True(r.StatusCode == HttpStatusCode.Forbidden, $"{r.RequestMessage!.Method} {r.RequestMessage.RequestUri!.PathAndQuery}: {(int)r.StatusCode} {body}");
            Assert.Contains("session_required", body);
        }
        // The password was not changed through the key.
        var login = await fx.Api.CreateClient().PostAsJsonAsync("api/auth/login", new { email = fx.Admin.Email, password = fx.Admin.Password }, Ct);
        Assert.Equal(HttpStatusCode.OK, login.StatusCode);
    }

    [Fact]
    public async Task Hole05_DisabledAccount_IsRefusedOnTheAccountRoutesToo()
    {
        var u = await fx.CreateUserAsync();
        Assert.Equal(HttpStatusCode.OK, (await u.Http.GetAsync("api/auth/manage/info", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await fx.Admin.Http.PostAsync($"api/admin/users/{u.Id}/disable", null, Ct)).StatusCode);

        Assert.Equal(HttpStatusCode.Unauthorized, (await u.Http.GetAsync("api/auth/manage/info", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await u.Http.PostAsJsonAsync("api/auth/manage/info", new { newEmail = "elsewhere@example.com" }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await fx.Api.CreateClient().PostAsJsonAsync("api/auth/refresh", new { refreshToken = u.RefreshToken }, Ct)).StatusCode);
        var login = await fx.Api.CreateClient().PostAsJsonAsync("api/auth/login", new { email = u.Email, password = u.Password }, Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, login.StatusCode);
    }

    [Fact]
    public async Task Hole06_UnknownApiKeys_AreThrottledPerAddress_BeforeAnyLookup()
    {
        var owner = await fx.CreateUserAsync();
        var realKey = await CreateKeyAsync(owner);
        var uncachedKey = await CreateKeyAsync(owner);
        const string guesser = "203.0.113.210";
        // The real key works from that address, and this replica now holds it.
        Assert.Equal(HttpStatusCode.OK, (await From(guesser, realKey).GetAsync("v1/models", Ct)).StatusCode);
        for (var i = 0; i < SecurityServiceFixture.ApiKeyFailures; i++)
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await From(guesser, $"jk-guess{Guid.NewGuid():N}").GetAsync("v1/models", Ct)).StatusCode);
        }
        var throttled = await From(guesser, $"jk-guess{Guid.NewGuid():N}").GetAsync("v1/models", Ct);
        Assert.Equal(HttpStatusCode.TooManyRequests, throttled.StatusCode);
        Assert.True(throttled.Headers.RetryAfter?.Delta is { } wait && wait <= TimeSpan.FromMinutes(1));
        Assert.Contains("too many unknown API keys", await throttled.Content.ReadAsStringAsync(Ct));
        // While it lasts, the address is refused with real keys too: one this replica holds (checked with the
        // request limits, in the same store call) and one it has not looked up yet (checked before the lookup).
        foreach (var key in new[] { realKey, uncachedKey })
        {
            var refused = await From(guesser, key).GetAsync("v1/models", Ct);
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
            Assert.Contains("too many unknown API keys", await refused.Content.ReadAsStringAsync(Ct));
        }
        // Other addresses keep working, with the real key.
        Assert.Equal(HttpStatusCode.OK, (await From("203.0.113.211", realKey).GetAsync("v1/models", Ct)).StatusCode);
    }

    [Fact]
    public async Task Hole07_Logout_RevokesRefreshTokensAndCopiedSessionCookies()
    {
        var u = await fx.CreateUserAsync();
        var jar = new CookieContainer();
        using var browser = fx.Api.CreateClient(new SocketsHttpHandler { CookieContainer = jar, AllowAutoRedirect = false });
        Assert.Equal(HttpStatusCode.OK, (await browser.PostAsJsonAsync("api/auth/login?useCookies=true", new { email = u.Email, password = u.Password }, Ct)).StatusCode);
        var cookie = jar.GetCookies(fx.Api.BaseUrl)["jackcwf.session"]?.ToString();
        Assert.NotNull(cookie);
        Assert.Equal(HttpStatusCode.OK, (await WithCookie(cookie!).GetAsync("api/me", Ct)).StatusCode);

        using var logout = new HttpRequestMessage(HttpMethod.Post, "api/auth/logout");
        logout.Headers.Add("X-Requested-With", "fetch");
        Assert.Equal(HttpStatusCode.NoContent, (await browser.SendAsync(logout, Ct)).StatusCode);

        // A copy of the cookie taken before the logout, a refresh token and a bearer token all stop working.
        Assert.Equal(HttpStatusCode.Unauthorized, (await WithCookie(cookie!).GetAsync("api/me", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await fx.Api.CreateClient().PostAsJsonAsync("api/auth/refresh", new { refreshToken = u.RefreshToken }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await u.Http.GetAsync("api/me", Ct)).StatusCode);
        // Signing in again works.
        Assert.Equal(HttpStatusCode.OK, (await fx.Api.CreateClient().PostAsJsonAsync("api/auth/login", new { email = u.Email, password = u.Password }, Ct)).StatusCode);
    }

    [Theory]
    // demo/echo answers word by word with a delay: thousands of words keep the stream open long enough.
    [InlineData("demo/echo", 4000)]
    // The provider answers in one burst of megabytes while this client does not read: the gateway's writes
    // wait on the client when the key is revoked. The revocation stops the call, not the connection.
    [InlineData("openai/gpt-4o-mini", 150_000)]
    public async Task Hole07_RevokingAKey_StopsItsGatewayStreamAlreadyRunning(string model, int words)
    {
        var u = await fx.CreateUserAsync();
        var created = await (await u.Http.PostAsJsonAsync("api/keys", new { name = "streamer" }, Ct)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        using var k = fx.Api.CreateClient();
        k.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", created.GetProperty("key").GetString());
        var echoed = model == "demo/echo";
        if (!echoed)
        {
            fx.Fake.Enqueue(new FakeScenario { Text = Words.Long(words) });
        }
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions")
        {
            Content = JsonContent.Create(new { model, stream = true, messages = new[] { new { role = "user", content = echoed ? Words.Long(words) : "hi" } } }),
        };
        using var response = await k.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(Ct), Encoding.UTF8);
        Assert.StartsWith("data: ", await reader.ReadLineAsync(Ct));

        Assert.Equal(HttpStatusCode.NoContent, (await u.Http.DeleteAsync($"api/keys/{created.GetProperty("id").GetGuid()}", Ct)).StatusCode);

        // The client reads what was sent, then the final error.
        var rest = await reader.ReadToEndAsync(Ct);
        var last = rest.TrimEnd().Split('\n')[^1];
        Assert.StartsWith("data: ", last);
        Assert.Equal("access_revoked", JsonDocument.Parse(last["data: ".Length..]).RootElement.GetProperty("error").GetProperty("code").GetString());
        Assert.DoesNotContain("[DONE]", rest);
        Assert.DoesNotContain($"w{words - 1}", rest);
    }

    [Fact]
    public async Task Hole19_CsrfExemption_HoldsOnlyForThisServicesBearerTokensAndKeys()
    {
        var u = await fx.CreateUserAsync();
        using var browser = fx.Api.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await browser.PostAsJsonAsync("api/auth/login?useCookies=true", new { email = u.Email, password = u.Password }, Ct)).StatusCode);
        // A cross-site form post: the browser replays the session cookie and a proxy's Basic credentials, nothing custom.
        foreach (var authorization in new[] { "Basic dXNlcjpwYXNz", "Negotiate abc", "bearer", "Bearer " })
        {
            using var forged = new HttpRequestMessage(HttpMethod.Post, "api/conversations") { Content = JsonContent.Create(new { title = "forged" }) };
            forged.Headers.TryAddWithoutValidation("Authorization", authorization);
            var r = await browser.SendAsync(forged, Ct);
            var body = await r.Content.ReadAsStringAsync(Ct);
            Assert.True(r.StatusCode == HttpStatusCode.Forbidden && body.Contains("\"csrf\""), $"{authorization}: {(int)r.StatusCode} {body}");
        }
        using var list = await browser.GetAsync("api/conversations", Ct);
        Assert.DoesNotContain("forged", await list.Content.ReadAsStringAsync(Ct));
    }

    [Fact]
    public async Task Hole03_AdministratorsGrantAndRevokeTheRole_NeverTheLastOne()
    {
        var u = await fx.CreateUserAsync();
        Assert.Equal(HttpStatusCode.Forbidden, (await u.Http.GetAsync("api/admin/users", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await u.Http.PostAsync($"api/admin/users/{u.Id}/admin", null, Ct)).StatusCode);

        Assert.Equal(HttpStatusCode.NoContent, (await fx.Admin.Http.PostAsync($"api/admin/users/{u.Id}/admin", null, Ct)).StatusCode);
        // Takes effect without signing in again.
        Assert.Equal(HttpStatusCode.OK, (await u.Http.GetAsync("api/admin/users", Ct)).StatusCode);
        Assert.True((await u.Http.GetFromJsonAsync<JsonElement>("api/me", Ct)).GetProperty("isAdmin").GetBoolean());

        Assert.Equal(HttpStatusCode.NoContent, (await fx.Admin.Http.DeleteAsync($"api/admin/users/{u.Id}/admin", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await u.Http.GetAsync("api/admin/users", Ct)).StatusCode);

        // The only administrator cannot remove the role from itself.
        var last = await fx.Admin.Http.DeleteAsync($"api/admin/users/{fx.Admin.Id}/admin", Ct);
        Assert.Equal(HttpStatusCode.Conflict, last.StatusCode);
        Assert.Contains("last_administrator", await last.Content.ReadAsStringAsync(Ct));
        Assert.Equal(HttpStatusCode.OK, (await fx.Admin.Http.GetAsync("api/admin/users", Ct)).StatusCode);
    }

    private HttpClient WithCookie(string cookie)
    {
        var c = fx.Api.CreateClient(new SocketsHttpHandler { UseCookies = false, AllowAutoRedirect = false });
        c.DefaultRequestHeaders.Add("Cookie", cookie);
        return c;
    }
}
