using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;

[assembly: AssemblyFixture(typeof(Jackcwf.OidcTests.OidcFixture))]

namespace Jackcwf.OidcTests;

/// <summary>
/// One real OpenID Connect provider and four services around it, started in parallel:
/// <list type="bullet">
/// <item><see cref="Main"/>: sign-in configured (display name <see cref="DisplayName"/>); its first account is a password administrator.</item>
/// <item><see cref="Closed"/>: ALLOW_REGISTRATION=false; its only account is <see cref="ClosedLocalEmail"/> with a password.</item>
/// <item><see cref="Unconfigured"/>: no OIDC_* variables.</item>
/// <item><see cref="Proxied"/>: behind a TLS-terminating proxy at <see cref="ProxiedOrigin"/> that does not forward the host,
/// so only PUBLIC_BASE_URL knows the public address; custom OIDC_CALLBACK_PATH; no account yet.</item>
/// </list>
/// </summary>
public sealed class OidcFixture : IAsyncLifetime
{
    public const string ClientId = "jackcwf-web";
    // A canary: it must never appear in the service's logs or metrics.
    public const string ClientSecret = "oidc-secret-canary-5b1e07d94c";
    public const string DisplayName = "Test SSO";
    public const string Password = "Passw0rd-local";
    public const string AdminEmail = "admin@example.test";
    public const string ClosedLocalEmail = "dave@example.test";
    public const string ProxiedCallbackPath = "/signin-oidc";
    public static readonly Uri ProxiedOrigin = new("https://chat.example.test/");
    /// <summary>A public name of <see cref="Main"/> that its load balancer forwards in X-Forwarded-Host.</summary>
    public static readonly Uri ForwardedOrigin = new("https://chat-a.example.test/");

    /// <summary>The provider's users; each test signs in with its own so tests stay independent.</summary>
    public static class Users
    {
        public static readonly ProviderAccount Alice = new("alice", "alice-pw", "sub-alice", "alice@example.test", true);
        public static readonly ProviderAccount Bob = new("bob", "bob-pw", "sub-bob", "bob@example.test", true);
        public static readonly ProviderAccount Mallory = new("mallory", "mallory-pw", "sub-mallory", "victim@example.test", false);
        public static readonly ProviderAccount Olivia = new("olivia", "olivia-pw", "sub-olivia", "olivia@example.test", true);
        public static readonly ProviderAccount Rita = new("rita", "rita-pw", "sub-rita", "rita@example.test", true);
        public static readonly ProviderAccount Erin = new("erin", "erin-pw", "sub-erin", "erin@example.test", true);
        public static readonly ProviderAccount Nora = new("nora", "nora-pw", "sub-nora", null, false);
        public static readonly ProviderAccount Carol = new("carol", "carol-pw", "sub-carol", "carol@example.test", true);
        public static readonly ProviderAccount Dave = new("dave", "dave-pw", "sub-dave", ClosedLocalEmail, true);
        public static readonly ProviderAccount Frank = new("frank", "frank-pw", "sub-frank", "frank@example.test", true);
        public static readonly ProviderAccount Mia = new("mia", "mia-pw", "sub-mia", "mia@example.test", true);
        public static readonly ProviderAccount Paula = new("paula", "paula-pw", "sub-paula", "paula@example.test", true);
        public static readonly ProviderAccount Xavier = new("xavier", "xavier-pw", "sub-xavier", "xavier@example.test", true);

        public static IReadOnlyList<ProviderAccount> All => [Alice, Bob, Mallory, Olivia, Rita, Erin, Nora, Carol, Dave, Frank, Mia, Paula, Xavier];
    }

    public OidcServer Provider { get; private set; } = null!;
    public ApiProcess Main { get; private set; } = null!;
    public ApiProcess Closed { get; private set; } = null!;
    public ApiProcess Unconfigured { get; private set; } = null!;
    public ApiProcess Proxied { get; private set; } = null!;

    /// <summary>A bearer token of <see cref="Main"/>'s administrator.</summary>
    public string AdminToken { get; private set; } = "";

    public async ValueTask InitializeAsync()
    {
        var ports = PortsInRange(25000, 25500, 5);
        var main = new Uri($"http://127.0.0.1:{ports[1]}/");
        var closed = new Uri($"http://127.0.0.1:{ports[2]}/");
        Provider = await OidcServer.StartAsync(ports[0],
            [new ProviderClient(ClientId, ClientSecret, [
                new Uri(main, "api/auth/external/oidc/callback").ToString(),
                new Uri(closed, "api/auth/external/oidc/callback").ToString(),
                new Uri(ProxiedOrigin, ProxiedCallbackPath).ToString(),
                new Uri(ForwardedOrigin, "api/auth/external/oidc/callback").ToString(),
            ])],
            Users.All);

        var starting = new[]
        {
            StartServiceAsync(ports[1], new() { ["OIDC_DISPLAY_NAME"] = DisplayName }),
            StartServiceAsync(ports[2], new() { ["ALLOW_REGISTRATION"] = "false" }),
            StartServiceAsync(ports[3], new() { ["OIDC_AUTHORITY"] = null, ["OIDC_CLIENT_ID"] = null, ["OIDC_CLIENT_SECRET"] = null }),
            StartServiceAsync(ports[4], new() { ["PUBLIC_BASE_URL"] = ProxiedOrigin.ToString(), ["OIDC_CALLBACK_PATH"] = ProxiedCallbackPath }),
        };
        try
        {
            await Task.WhenAll(starting);
        }
        finally
        {
            // Keep whatever started so DisposeAsync stops it, even when another failed.
            Main = starting[0].IsCompletedSuccessfully ? starting[0].Result : null!;
            Closed = starting[1].IsCompletedSuccessfully ? starting[1].Result : null!;
            Unconfigured = starting[2].IsCompletedSuccessfully ? starting[2].Result : null!;
            Proxied = starting[3].IsCompletedSuccessfully ? starting[3].Result : null!;
        }

        // The first account of a service is its administrator: make it a password account before any external sign-in.
        await RegisterAsync(Main, AdminEmail);
        AdminToken = await PasswordLoginAsync(Main, AdminEmail);
        await RegisterAsync(Closed, ClosedLocalEmail);
        // Single sign-on links only to local accounts that proved their address.
        await ConfirmEmailAsync(Closed, ClosedLocalEmail);
    }

    /// <summary>Marks a local account's email as confirmed in the service's SQLite database (no mail is sent in tests).</summary>
    public static async Task ConfirmEmailAsync(ApiProcess api, string email)
    {
        var start = new System.Diagnostics.ProcessStartInfo("sqlite3") { RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(api.WorkingDirectory, "data", "jackcwf.db"));
        start.ArgumentList.Add($"UPDATE AspNetUsers SET EmailConfirmed = 1 WHERE NormalizedEmail = '{email.ToUpperInvariant()}';");
        using var sqlite = System.Diagnostics.Process.Start(start)
            ?? throw new InvalidOperationException("sqlite3 could not be started: install the sqlite3 package (tests/apt-packages.txt).");
        var error = await sqlite.StandardError.ReadToEndAsync();
        await sqlite.WaitForExitAsync();
        Assert.True(sqlite.ExitCode == 0, $"sqlite3 failed ({sqlite.ExitCode}): {error}");
    }

    private async Task<ApiProcess> StartServiceAsync(int port, Dictionary<string, string?> settings)
    {
        var environment = new Dictionary<string, string?>
        {
            ["OIDC_AUTHORITY"] = Provider.Issuer.ToString(),
            ["OIDC_CLIENT_ID"] = ClientId,
            ["OIDC_CLIENT_SECRET"] = ClientSecret,
            ["OIDC_DISPLAY_NAME"] = null,
            ["OIDC_SCOPES"] = null,
            ["OIDC_CALLBACK_PATH"] = null,
            ["PUBLIC_BASE_URL"] = null,
            ["ALLOW_REGISTRATION"] = null,
            ["DATABASE_URL"] = null,
            ["REDIS_URL"] = null,
            ["ENABLE_MONITORING"] = "false",
        };
        foreach (var (key, value) in settings)
        {
            environment[key] = value;
        }
        // Four services start at once on a shared 2-core machine: allow for a slow start.
        return await ApiProcess.StartAsync(new ApiProcessOptions { Port = port, Environment = environment, ReadyTimeout = TimeSpan.FromMinutes(4) });
    }

    public static async Task RegisterAsync(ApiProcess api, string email)
    {
        using var client = api.CreateClient();
        var response = await client.PostAsJsonAsync("api/auth/register", new { email, password = Password });
        Assert.True(response.IsSuccessStatusCode, $"register {email}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
    }

    public static async Task<string> PasswordLoginAsync(ApiProcess api, string email)
    {
        using var client = api.CreateClient();
        var response = await client.PostAsJsonAsync("api/auth/login", new { email, password = Password });
        Assert.True(response.IsSuccessStatusCode, $"login {email}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("accessToken").GetString()!;
    }

    public static HttpClient BearerClient(ApiProcess api, string token)
    {
        var client = api.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    /// <summary>Free loopback ports from this suite's own range, so parallel suites do not collide.</summary>
    private static int[] PortsInRange(int low, int high, int count)
    {
        var chosen = new List<int>();
        var start = Random.Shared.Next(low, high);
        for (var i = 0; i < high - low && chosen.Count < count; i++)
        {
            var port = low + ((start - low + i) % (high - low));
            if (FreePort.IsFree(port))
            {
                chosen.Add(port);
            }
        }
        return chosen.Count == count ? [.. chosen] : throw new InvalidOperationException($"Fewer than {count} free ports between {low} and {high}.");
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var api in new[] { Main, Closed, Unconfigured, Proxied })
        {
            if (api is not null)
            {
                await api.DisposeAsync();
            }
        }
        if (Provider is not null)
        {
            await Provider.DisposeAsync();
        }
    }
}
