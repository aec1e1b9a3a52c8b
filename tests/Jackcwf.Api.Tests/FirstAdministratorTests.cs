using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Jackcwf.Api.Web;
using Jackcwf.Testing;

namespace Jackcwf.Api.Tests;

/// <summary>Services of their own: an empty database (who becomes administrator) and a narrow proxy trust list.</summary>
public sealed partial class FirstAdministratorTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [GeneratedRegex(@"X-Setup-Token: (?<token>[A-Za-z0-9_-]{20,}) on POST")]
    private static partial Regex SetupTokenLine();

    private static HttpClient From(ApiProcess api, string ip)
    {
        var c = api.CreateClient();
        c.DefaultRequestHeaders.Add("X-Forwarded-For", ip);
        return c;
    }

    [Fact]
    public async Task Hole03_FirstAdministrator_OnlyFromLoopbackOrTheSetupToken_ExactlyOneUnderARace()
    {
        await using var api = await ApiProcess.StartAsync(new ApiProcessOptions
        {
            Environment = new Dictionary<string, string?> { ["ALLOW_REGISTRATION"] = "false", ["DATABASE_URL"] = null, ["REDIS_URL"] = null },
        }, Ct);
        var line = await api.WaitForLogAsync("X-Setup-Token", TimeSpan.FromSeconds(60), Ct);
        var token = SetupTokenLine().Match(line).Groups["token"].Value;
        Assert.False(string.IsNullOrEmpty(token), line);

        // From the internet, without or with a wrong token: refused, and nothing is created.
        var remote = await From(api, "203.0.113.50").PostAsJsonAsync("api/auth/register", new { email = "early@example.com", password = "Passw0rd-early" }, Ct);
        Assert.Equal(HttpStatusCode.Forbidden, remote.StatusCode);
        Assert.Contains("setup_token_required", await remote.Content.ReadAsStringAsync(Ct));
        using (var forged = new HttpRequestMessage(HttpMethod.Post, "api/auth/register") { Content = JsonContent.Create(new { email = "early@example.com", password = "Passw0rd-early" }) })
        {
            forged.Headers.Add("X-Forwarded-For", "203.0.113.50");
            forged.Headers.Add("X-Setup-Token", token[..^4] + "AAAA");
            Assert.Equal(HttpStatusCode.Forbidden, (await api.CreateClient().SendAsync(forged, Ct)).StatusCode);
        }

        // Ten first registrations at the same moment, half from this machine and half remote with the token.
        using var start = new SemaphoreSlim(0);
        var attempts = Enumerable.Range(0, 10).Select(async i =>
        {
            var email = $"first{i}@example.com";
            using var request = new HttpRequestMessage(HttpMethod.Post, "api/auth/register") { Content = JsonContent.Create(new { email, password = "Passw0rd-first" }) };
            if (i % 2 == 1)
            {
                request.Headers.Add("X-Forwarded-For", $"203.0.113.{60 + i}");
                request.Headers.Add("X-Setup-Token", token);
            }
            using var client = api.CreateClient();
            await start.WaitAsync(Ct);
            var r = await client.SendAsync(request, Ct);
            return (email, r.StatusCode);
        }).ToList();
        start.Release(attempts.Count);
        var results = await Task.WhenAll(attempts);

        var winner = Assert.Single(results, r => r.StatusCode == HttpStatusCode.OK);
        Assert.All(results.Where(r => r != winner), r => Assert.True(r.StatusCode is HttpStatusCode.Forbidden or HttpStatusCode.BadRequest, $"{r.email}: {r.StatusCode}"));
        var login = await (await api.CreateClient().PostAsJsonAsync("api/auth/login", new { winner.email, password = "Passw0rd-first" }, Ct)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        using var admin = api.CreateClient();
        admin.DefaultRequestHeaders.Authorization = new("Bearer", login.GetProperty("accessToken").GetString());
        Assert.True((await admin.GetFromJsonAsync<JsonElement>("api/me", Ct)).GetProperty("isAdmin").GetBoolean());
        var users = (await admin.GetFromJsonAsync<JsonElement>("api/admin/users", Ct)).GetProperty("items");
        Assert.Equal(1, users.GetArrayLength());
        // The setup token is audited when it made the administrator (the odd attempts carried it), and only then.
        var tokenUses = (await admin.GetFromJsonAsync<JsonElement>("api/admin/audit?action=setup.token_used", Ct)).GetProperty("items");
        var winnerUsedToken = int.Parse(winner.email["first".Length..^"@example.com".Length], System.Globalization.CultureInfo.InvariantCulture) % 2 == 1;
        Assert.Equal(winnerUsedToken ? 1 : 0, tokenUses.GetArrayLength());
        if (winnerUsedToken)
        {
            Assert.Equal(winner.email, tokenUses[0].GetProperty("actorEmail").GetString());
        }

        // The token was good for the first account only.
        using var late = new HttpRequestMessage(HttpMethod.Post, "api/auth/register") { Content = JsonContent.Create(new { email = "late@example.com", password = "Passw0rd-late" }) };
        late.Headers.Add("X-Forwarded-For", "203.0.113.90");
        late.Headers.Add("X-Setup-Token", token);
        var refused = await api.CreateClient().SendAsync(late, Ct);
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Contains("registration_closed", await refused.Content.ReadAsStringAsync(Ct));
    }

    [Fact]
    public async Task Hole16_ForwardedHeaders_AreBelievedOnlyFromTrustedNetworks()
    {
        await using var api = await ApiProcess.StartAsync(new ApiProcessOptions
        {
            Environment = new Dictionary<string, string?>
            {
                // Loopback is not a trusted proxy here: every request of this test comes straight from a client.
                ["FORWARDED_TRUSTED_NETWORKS"] = "192.0.2.0/24",
                ["AUTH_FAILED_SIGNINS_PER_IP"] = "2",
                ["DATABASE_URL"] = null,
                ["REDIS_URL"] = null,
            },
        }, Ct);
        const string email = "proxied@example.com", password = "Passw0rd-proxied";
        Assert.Equal(HttpStatusCode.OK, (await api.CreateClient().PostAsJsonAsync("api/auth/register", new { email, password }, Ct)).StatusCode);

        // A spoofed X-Forwarded-Proto does not make the session cookie look like it travelled over HTTPS…
        using (var login = new HttpRequestMessage(HttpMethod.Post, "api/auth/login?useCookies=true") { Content = JsonContent.Create(new { email, password }) })
        {
            login.Headers.Add("X-Forwarded-Proto", "https");
            login.Headers.Add("X-Forwarded-Host", "evil.example");
            var r = await api.CreateClient().SendAsync(login, Ct);
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            var cookie = Assert.Single(r.Headers.GetValues("Set-Cookie"), c => c.StartsWith("jackcwf.session=", StringComparison.Ordinal));
            Assert.DoesNotContain("secure", cookie, StringComparison.OrdinalIgnoreCase);
        }

        // …and a new X-Forwarded-For on each try does not escape the per-address throttle.
        for (var i = 1; i <= 2; i++)
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await From(api, $"203.0.113.{i}").PostAsJsonAsync("api/auth/login", new { email, password = "wrong" }, Ct)).StatusCode);
        }
        Assert.Equal(HttpStatusCode.TooManyRequests, (await From(api, "203.0.113.3").PostAsJsonAsync("api/auth/login", new { email, password = "wrong" }, Ct)).StatusCode);
    }

    [Fact]
    public void Hole16_DefaultTrustedNetworks_AreLoopbackAndTheComposeAndClusterNetworksOnly()
    {
        var (networks, invalid) = ForwardedNetworks.Parse(null);
        Assert.Empty(invalid);
        bool Trusted(string ip) => networks.Any(n => n.Contains(IPAddress.Parse(ip)));
        Assert.True(Trusted("127.0.0.1"));
        Assert.True(Trusted("::1"));
        Assert.True(Trusted("172.18.0.5"));   // a Compose network
        Assert.True(Trusted("10.244.1.7"));   // a Kubernetes pod network
        Assert.False(Trusted("203.0.113.7"));
        Assert.False(Trusted("8.8.8.8"));
        Assert.False(Trusted("2001:db8::1"));
        Assert.Empty(ForwardedNetworks.Parse("none").Networks);
        Assert.Equal(["nonsense"], ForwardedNetworks.Parse("10.0.0.0/8, nonsense").Invalid);
    }
}
