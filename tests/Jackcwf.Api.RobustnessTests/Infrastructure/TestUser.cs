using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace Jackcwf.Api.RobustnessTests.Infrastructure;

/// <summary>A registered, signed-in account with a client that sends its bearer token.</summary>
internal sealed class TestUser(HttpClient client, string email, string password, string accessToken, string refreshToken) : IDisposable
{
    public HttpClient Client { get; } = client;
    public string Email { get; } = email;
    public string Password { get; } = password;
    public string AccessToken { get; } = accessToken;
    public string RefreshToken { get; } = refreshToken;

    public static async Task<TestUser> SignUpAsync(ApiProcess api, string? email = null, string? password = null)
    {
        email ??= $"user-{Guid.NewGuid():N}@example.test";
        password ??= "Passw0rd-" + Guid.NewGuid().ToString("N")[..8];
        var client = api.CreateClient();
        using (var register = await client.PostAsJsonAsync("api/auth/register", new { email, password }))
        {
            Assert.True(register.IsSuccessStatusCode, $"register answered {(int)register.StatusCode}: {await register.Content.ReadAsStringAsync()}");
        }
        using var login = await client.PostAsJsonAsync("api/auth/login", new { email, password });
        Assert.True(login.StatusCode == HttpStatusCode.OK, $"login answered {(int)login.StatusCode}: {await login.Content.ReadAsStringAsync()}");
        var tokens = await login.Content.ReadFromJsonAsync<JsonElement>();
        var access = tokens.GetProperty("accessToken").GetString()!;
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", access);
        return new TestUser(client, email, password, access, tokens.GetProperty("refreshToken").GetString()!);
    }

    public async Task<Guid> CreateConversationAsync(string? title = null)
    {
        using var r = await Client.PostAsJsonAsync("api/conversations", new { title });
        Assert.Equal(HttpStatusCode.Created, r.StatusCode);
        return (await r.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
    }

    /// <summary>Sends a message and waits for the JSON answer; returns (user message id, assistant message id).</summary>
    public async Task<(Guid User, Guid Assistant)> ChatAsync(Guid conversation, string content)
    {
        using var r = await Client.PostAsJsonAsync($"api/conversations/{conversation}/messages", new { content });
        var body = await r.Content.ReadAsStringAsync();
        Assert.True(r.StatusCode == HttpStatusCode.OK, $"chat answered {(int)r.StatusCode}: {body}");
        using var json = JsonDocument.Parse(body);
        return (json.RootElement.GetProperty("userMessage").GetProperty("id").GetGuid(),
            json.RootElement.GetProperty("assistantMessage").GetProperty("id").GetGuid());
    }

    public async Task<JsonElement> GetConversationAsync(Guid conversation)
    {
        using var r = await Client.GetAsync($"api/conversations/{conversation}");
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        return await r.Content.ReadFromJsonAsync<JsonElement>();
    }

    /// <summary>
    /// Everything this user can see, as text: every conversation (all pages) with every message's id,
    /// role, status and content. Two equal snapshots mean nothing the user owns changed.
    /// </summary>
    public async Task<string> SnapshotAsync()
    {
        var sb = new StringBuilder();
        string? cursor = null;
        var conversations = 0;
        var messages = 0;
        do
        {
            using var page = await Client.GetAsync("api/conversations?limit=100" + (cursor is null ? "" : "&cursor=" + Uri.EscapeDataString(cursor)));
            Assert.Equal(HttpStatusCode.OK, page.StatusCode);
            var json = await page.Content.ReadFromJsonAsync<JsonElement>();
            foreach (var item in json.GetProperty("items").EnumerateArray())
            {
                var id = item.GetProperty("id").GetGuid();
                var detail = await GetConversationAsync(id);
                conversations++;
                sb.Append("conversation ").Append(id).Append(' ').Append(detail.GetProperty("title").GetString())
                    .Append(' ').Append(detail.GetProperty("model").GetString()).Append(' ').Append(detail.GetProperty("updatedAt").GetString()).AppendLine();
                foreach (var m in detail.GetProperty("messages").EnumerateArray())
                {
                    messages++;
                    sb.Append("  ").Append(m.GetProperty("id").GetGuid()).Append(' ').Append(m.GetProperty("role").GetString())
                        .Append(' ').Append(m.GetProperty("status").GetString()).Append(' ').Append(m.GetProperty("content").GetString()).AppendLine();
                }
            }
            cursor = json.GetProperty("nextCursor").ValueKind == JsonValueKind.String ? json.GetProperty("nextCursor").GetString() : null;
        }
        while (cursor is not null);
        using (var keys = await Client.GetAsync("api/keys"))
        {
            Assert.Equal(HttpStatusCode.OK, keys.StatusCode);
            sb.Append("keys ").AppendLine(await keys.Content.ReadAsStringAsync());
        }
        return $"{conversations} conversations, {messages} messages\n{sb}";
    }

    public void Dispose() => Client.Dispose();
}
