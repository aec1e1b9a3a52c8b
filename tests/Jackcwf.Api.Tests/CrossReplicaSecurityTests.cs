using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Jackcwf.Testing;
using Npgsql;

namespace Jackcwf.Api.Tests;

/// <summary>The account protections on two replicas sharing PostgreSQL and Redis.</summary>
public sealed partial class CrossReplicaTests
{
    private static HttpClient From(ApiProcess api, string ip)
    {
        var c = api.CreateClient();
        c.DefaultRequestHeaders.Add("X-Forwarded-For", ip);
        return c;
    }

    private async Task<(string Email, string Password)> RegisterAsync()
    {
        var email = $"s{Guid.NewGuid():N}@example.com";
        const string password = "Replica-Passw0rd";
        Assert.True((await fx.A.CreateClient().PostAsJsonAsync("api/auth/register", new { email, password }, Ct)).IsSuccessStatusCode);
        return (email, password);
    }

    [Fact]
    public async Task Hole04_FailedSignIns_SlowDownTheAddressAndTheAccount_OnEveryReplica_NeverForGood()
    {
        var (email, password) = await RegisterAsync();
        // One address alternating replicas: the failures add up in Redis.
        const string attacker = "203.0.113.77";
        for (var i = 0; i < TwoReplicasFixture.FailedSignInsPerIp; i++)
        {
            var r = await From(i % 2 == 0 ? fx.A : fx.B, attacker).PostAsJsonAsync("api/auth/login", new { email, password = "wrong" + i }, Ct);
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
        }
        var slowed = await From(fx.B, attacker).PostAsJsonAsync("api/auth/login", new { email, password }, Ct);
        Assert.Equal(HttpStatusCode.TooManyRequests, slowed.StatusCode);
        Assert.True(slowed.Headers.RetryAfter?.Delta is { } ipWait && ipWait <= TimeSpan.FromMinutes(1), $"Retry-After {slowed.Headers.RetryAfter}");

        // The owner, from elsewhere, still signs in: the attacker's address is slowed, not the account.
        Assert.Equal(HttpStatusCode.OK, (await From(fx.A, "198.51.100.7").PostAsJsonAsync("api/auth/login", new { email, password }, Ct)).StatusCode);

        // Many addresses together reach the per-account limit, which opens again by itself (a sliding window).
        for (var i = TwoReplicasFixture.FailedSignInsPerIp; i < TwoReplicasFixture.FailedSignInsPerAccount; i++)
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await From(fx.B, $"203.0.113.{100 + i}").PostAsJsonAsync("api/auth/login", new { email, password = "wrong" + i }, Ct)).StatusCode);
        }
        var locked = await From(fx.A, "198.51.100.8").PostAsJsonAsync("api/auth/login", new { email, password }, Ct);
        Assert.Equal(HttpStatusCode.TooManyRequests, locked.StatusCode);
        Assert.True(locked.Headers.RetryAfter?.Delta is { } accountWait && accountWait <= TimeSpan.FromMinutes(15), $"Retry-After {locked.Headers.RetryAfter}");
        Assert.Contains("auth_failures_account", await locked.Content.ReadAsStringAsync(Ct));
    }

    [Fact]
    public async Task Hole07_DisablingAUser_StopsItsGatewayStreamOnTheOtherReplica()
    {
        var (email, password) = await RegisterAsync();
        using var session = fx.A.CreateClient();
        var tokens = await (await session.PostAsJsonAsync("api/auth/login", new { email, password }, Ct)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        session.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", tokens.GetProperty("accessToken").GetString());
        var me = await session.GetFromJsonAsync<JsonElement>("api/me", Ct);
        var key = (await (await session.PostAsJsonAsync("api/keys", new { name = "gateway" }, Ct)).Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("key").GetString();

        using var onB = fx.B.CreateClient();
        onB.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions")
        {
            Content = JsonContent.Create(new { model = "demo/echo", stream = true, messages = new[] { new { role = "user", content = Words.Long(2000) } } }),
        };
        using var response = await onB.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(Ct), Encoding.UTF8);
        Assert.StartsWith("data: ", await reader.ReadLineAsync(Ct));

        Assert.Equal(HttpStatusCode.NoContent, (await fx.Admin.PostAsync($"api/admin/users/{me.GetProperty("id").GetGuid()}/disable", null, Ct)).StatusCode);

        var rest = await reader.ReadToEndAsync(Ct);
        Assert.Contains("access_revoked", rest);
        Assert.DoesNotContain("[DONE]", rest);
    }

    [Fact]
    public async Task Hole07_ABearerTokenInUse_IsRefusedOnEveryReplica_AsSoonAsItsSessionIsSignedOut()
    {
        var (email, password) = await RegisterAsync();
        var tokens = await (await fx.A.CreateClient().PostAsJsonAsync("api/auth/login", new { email, password }, Ct)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        var token = tokens.GetProperty("accessToken").GetString()!;
        HttpClient With(ApiProcess api, string bearer)
        {
            var c = api.CreateClient();
            c.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
            return c;
        }
        // The token is in use on both replicas (each has read it), and a copy with one character changed is not a token.
        foreach (var api in new[] { fx.A, fx.B })
        {
            Assert.Equal(HttpStatusCode.OK, (await With(api, token).GetAsync("api/me", Ct)).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await With(api, token).GetAsync("api/me", Ct)).StatusCode);
        }
        var forged = token[..^2] + (token[^2] == 'A' ? 'B' : 'A') + token[^1];
        Assert.Equal(HttpStatusCode.Unauthorized, (await With(fx.B, forged).GetAsync("api/me", Ct)).StatusCode);

        // Signed out on A: the very next request with the token is refused on both replicas; signing in again works at
        // once, and the old token stays refused.
        Assert.Equal(HttpStatusCode.NoContent, (await With(fx.A, token).PostAsync("api/auth/logout", null, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await With(fx.B, token).GetAsync("api/me", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await With(fx.A, token).GetAsync("api/me", Ct)).StatusCode);
        var again = await (await fx.B.CreateClient().PostAsJsonAsync("api/auth/login", new { email, password }, Ct)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal(HttpStatusCode.OK, (await With(fx.A, again.GetProperty("accessToken").GetString()!).GetAsync("api/me", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await With(fx.B, token).GetAsync("api/me", Ct)).StatusCode);
    }

    [Fact]
    public async Task Hole08_TheDataProtectionKeyRing_IsEncryptedAtRest_AndTheKeyIsRequired()
    {
        // Both replicas have signed in users, so the ring holds at least one key.
        await using (var db = new NpgsqlConnection(fx.DatabaseConnectionString))
        {
            await db.OpenAsync(Ct);
            await using var cmd = new NpgsqlCommand("SELECT \"Xml\" FROM \"DataProtectionKeys\"", db);
            var rows = new List<string>();
            await using (var reader = await cmd.ExecuteReaderAsync(Ct))
            {
                while (await reader.ReadAsync(Ct))
                {
                    rows.Add(reader.GetString(0));
                }
            }
            Assert.NotEmpty(rows);
            Assert.All(rows, xml =>
            {
                Assert.Contains("encryptedSecret", xml);
                Assert.DoesNotContain("<masterKey", xml);
            });
        }

        // Without DATA_PROTECTION_KEY the service refuses to start on PostgreSQL, naming the variable.
        var run = await ApiProcess.RunCommandAsync([], new ApiProcessOptions
        {
            Environment = new Dictionary<string, string?> { ["DATABASE_URL"] = fx.DatabaseUrl, ["DATA_PROTECTION_KEY"] = null },
        }, TimeSpan.FromSeconds(90), Ct);
        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains("DATA_PROTECTION_KEY", run.Output);
    }
}
