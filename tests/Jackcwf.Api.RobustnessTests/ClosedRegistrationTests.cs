using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Jackcwf.Api.RobustnessTests.Infrastructure;

namespace Jackcwf.Api.RobustnessTests;

/// <summary>A service with registration closed and its administrator signed in.</summary>
public sealed class ClosedRegistrationFixture : IAsyncLifetime
{
    public ApiProcess Api { get; private set; } = null!;
    internal TestUser Admin { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        Api = await Service.StartAsync(new Dictionary<string, string?> { ["ALLOW_REGISTRATION"] = "false" });
        // The first account may always be created from the server itself; it is the administrator.
        Admin = await TestUser.SignUpAsync(Api);
    }

    /// <summary>Signs in afresh each time: a probe may have ended the administrator's session (logout).</summary>
    public async Task<int> AccountCountAsync()
    {
        using var client = Api.CreateClient();
        var login = await client.PostAsJsonAsync("api/auth/login", new { email = Admin.Email, password = Admin.Password });
        var token = (await login.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("accessToken").GetString();
        client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        return (await client.GetFromJsonAsync<JsonElement>("api/admin/users")).GetProperty("items").GetArrayLength();
    }

    public async ValueTask DisposeAsync()
    {
        Admin?.Dispose();
        if (Api is not null)
        {
            await Api.DisposeAsync();
        }
    }
}

public sealed class ClosedRegistrationTests(ClosedRegistrationFixture fx, ITestOutputHelper output) : IClassFixture<ClosedRegistrationFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("api/auth/register")]
    [InlineData("api/auth/register/")]
    [InlineData("api/auth/register//")]
    [InlineData("api//auth/register")]
    [InlineData("api/auth//register")]
    [InlineData("API/AUTH/REGISTER")]
    [InlineData("api/auth/Register/")]
    [InlineData("api/auth/%72egister")]
    [InlineData("api/auth/registe%72/")]
    [InlineData("api/%61uth/register")]
    [InlineData("api/auth/register?x=/register")]
    [InlineData("api/auth/register;x")]
    [InlineData("api/auth/./register")]
    [InlineData("api/auth/x/../register")]
    public async Task Hole01_ClosedRegistration_HoldsForEverySpellingOfTheRoute(string path)
    {
        var before = await fx.AccountCountAsync();
        using var client = fx.Api.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(fx.Api.BaseUrl + path, UriKind.Absolute))
        {
            Content = JsonContent.Create(new { email = $"sneaky-{Guid.NewGuid():N}@example.test", password = "Passw0rd-sneaky" }),
        };
        var response = await client.SendAsync(request, Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);

        Assert.True(!response.IsSuccessStatusCode && (int)response.StatusCode < 500, $"{path}: {(int)response.StatusCode} {body}");
        if (response.StatusCode == HttpStatusCode.Forbidden)
        {
            Assert.Contains("registration_closed", body);
        }
        Assert.Equal(before, await fx.AccountCountAsync());
    }

    [Fact]
    public async Task Account_and_admin_routes_answer_the_malformed_corpus_without_a_server_error_and_create_no_account()
    {
        var before = await fx.AccountCountAsync();
        var conversation = await fx.Admin.CreateConversationAsync("fuzz target");
        var (_, assistant) = await fx.Admin.ChatAsync(conversation, "something");
        fx.Api.Log.Clear();

        using var http = fx.Api.CreateClient();
        var document = JsonNode.Parse(await http.GetStringAsync("openapi/v1.json", Ct))!;
        var routes = MalformedRequestTests.Routes(document)
            .Where(r => r.Template.StartsWith("/api/auth", StringComparison.Ordinal) || r.Template.StartsWith("/api/admin", StringComparison.Ordinal))
            // Disabling the only administrator's own account is refused anyway; deleting comes last.
            .OrderBy(r => r.Method == "DELETE")
            .ToList();
        Assert.Contains(routes, r => r.Template == "/api/auth/register");
        Assert.Contains(routes, r => r.Template.StartsWith("/api/admin/users", StringComparison.Ordinal));

        var probes = new List<(string Identity, MalformedRequestTests.Probe Probe)>();
        foreach (var route in routes)
        {
            foreach (var probe in MalformedRequestTests.ProbesFor(route, conversation, assistant))
            {
                probes.Add(("anonymous", probe));
                // Logout would end the administrator's session half-way and leave the rest of its probes unexamined.
                if (route.Template != "/api/auth/logout")
                {
                    probes.Add(("administrator", probe));
                }
            }
        }
        // Well-formed registrations too, in every identity: still no account.
        foreach (var path in new[] { "api/auth/register", "api/auth/register/", "API/Auth/Register" })
        {
            var ok = new MalformedRequestTests.Probe("valid registration", HttpMethod.Post, path,
                () => new StringContent($"{{\"email\":\"fuzz-{Guid.NewGuid():N}@example.test\",\"password\":\"Passw0rd-fuzz\"}}", Encoding.UTF8, "application/json"), []);
            probes.Add(("anonymous", ok));
            probes.Add(("administrator", ok));
        }

        var (failures, statuses) = await MalformedRequestTests.SendAllAsync(fx.Api, probes, fx.Admin.AccessToken, fx.Admin.AccessToken);
        var summary = $"{probes.Count} requests to {routes.Count} account and admin operations; statuses: "
            + string.Join(", ", statuses.OrderBy(s => s.Key).Select(s => $"{s.Key}×{s.Value}"));
        output.WriteLine(summary);
        TestContext.Current.SendDiagnosticMessage(summary);

        var errors = LogAssert.ErrorLines(fx.Api);
        Assert.True(failures.IsEmpty && errors.Count == 0,
            $"{failures.Count} of {probes.Count} requests failed on the server:\n" + string.Join('\n', failures.Take(40))
            + $"\n{errors.Count} error log lines:\n" + string.Join('\n', errors.GroupBy(e => e).Select(g => $"{g.Count()}× {g.Key}").Take(30)));
        Assert.Equal(before, await fx.AccountCountAsync());
    }
}
