using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Jackcwf.Api.Tests;

/// <summary>Share links (snapshot, anonymous read, revoke, ownership) and the audit log, on one database.</summary>
public abstract class SharingAndAuditTests<TFixture>(TFixture fx) where TFixture : ServiceFixture
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<Guid> AnsweredAsync(TestUser u, Guid conversation, object body)
    {
        var sent = await u.SendAsync(conversation, body);
        var assistant = sent.GetProperty("assistantMessage").GetProperty("id").GetGuid();
        await u.WaitForMessageAsync(conversation, assistant, m => m["status"]!.GetValue<string>() == "complete");
        return sent.GetProperty("userMessage").GetProperty("id").GetGuid();
    }

    [Fact]
    public async Task ShareLinkServesTheCurrentBranchAnonymouslyWithoutOwnerDataUntilRevoked()
    {
        var u = await fx.CreateUserAsync();
        var c = await u.CreateConversationAsync(new { title = "Trip plan" });
        var first = await AnsweredAsync(u, c, new { content = "an older branch about lemons" });
        // parentMessageId null starts a sibling root: the newest branch is the one shown and shared.
        var second = await AnsweredAsync(u, c, new { content = "the shared branch about oranges", parentMessageId = (Guid?)null });

        var r = await u.Http.PostAsJsonAsync($"api/conversations/{c}/share", new { }, Ct);
        Assert.Equal(HttpStatusCode.Created, r.StatusCode);
        var link = await r.Content.ReadFromJsonAsync<JsonElement>(Ct);
        var token = link.GetProperty("token").GetString()!;
        Assert.True(token.Length >= 43, token);
        Assert.EndsWith($"/s/{token}", link.GetProperty("url").GetString());

        var anon = fx.Api.CreateClient();
        var shared = await anon.GetAsync($"api/shared/{token}", Ct);
        Assert.Equal(HttpStatusCode.OK, shared.StatusCode);
        Assert.Contains("noindex", shared.Headers.GetValues("X-Robots-Tag").Single());
        var text = await shared.Content.ReadAsStringAsync(Ct);
        var body = JsonNode.Parse(text)!.AsObject();
        Assert.Equal("Trip plan", body["title"]!.GetValue<string>());
        var messages = body["messages"]!.AsArray().Select(m => (m!["role"]!.GetValue<string>(), m["content"]!.GetValue<string>())).ToList();
        Assert.Equal([("user", "the shared branch about oranges"), ("assistant", "the shared branch about oranges")], messages);
        foreach (var secret in new[] { u.Email, u.Id.ToString(), c.ToString(), first.ToString(), second.ToString(), "lemons" })
        {
            Assert.DoesNotContain(secret, text, StringComparison.OrdinalIgnoreCase);
        }

        var page = await anon.GetAsync($"s/{token}", Ct);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        Assert.Contains("noindex", page.Headers.GetValues("X-Robots-Tag").Single());

        // The snapshot is frozen: later messages do not leak into it.
        await AnsweredAsync(u, c, new { content = "written after sharing" });
        Assert.DoesNotContain("written after sharing", await anon.GetStringAsync($"api/shared/{token}", Ct));

        var list = await u.Http.GetFromJsonAsync<JsonElement>("api/shares", Ct);
        var item = list.GetProperty("items").EnumerateArray().Single();
        Assert.Equal(c, item.GetProperty("conversationId").GetGuid());
        Assert.Equal(token, item.GetProperty("token").GetString());

        Assert.Equal(HttpStatusCode.NoContent, (await u.Http.DeleteAsync($"api/conversations/{c}/share", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await anon.GetAsync($"api/shared/{token}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await anon.GetAsync($"s/{token}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await u.Http.DeleteAsync($"api/conversations/{c}/share", Ct)).StatusCode);
        Assert.Empty((await u.Http.GetFromJsonAsync<JsonElement>("api/shares", Ct)).GetProperty("items").EnumerateArray());
    }

    [Fact]
    public async Task AnotherUserCannotShareOrRevokeYourConversationAndUnknownTokensAre404()
    {
        var owner = await fx.CreateUserAsync();
        var other = await fx.CreateUserAsync();
        var c = await owner.CreateConversationAsync();
        await AnsweredAsync(owner, c, new { content = "private words" });

        var steal = await other.Http.PostAsJsonAsync($"api/conversations/{c}/share", new { }, Ct);
        Assert.Equal(HttpStatusCode.NotFound, steal.StatusCode);
        Assert.Equal("application/problem+json", steal.Content.Headers.ContentType?.MediaType);
        var r = await owner.Http.PostAsJsonAsync($"api/conversations/{c}/share", new { }, Ct);
        var token = (await r.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("token").GetString()!;
        Assert.Equal(HttpStatusCode.NotFound, (await other.Http.DeleteAsync($"api/conversations/{c}/share", Ct)).StatusCode);
        Assert.Empty((await other.Http.GetFromJsonAsync<JsonElement>("api/shares", Ct)).GetProperty("items").EnumerateArray());
        Assert.Equal(HttpStatusCode.OK, (await fx.Api.CreateClient().GetAsync($"api/shared/{token}", Ct)).StatusCode);

        var anon = fx.Api.CreateClient();
        Assert.Equal(HttpStatusCode.NotFound, (await anon.GetAsync("api/shared/" + new string('A', 43), Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await anon.GetAsync("api/shared/short", Ct)).StatusCode);
        var badMessage = await owner.Http.PostAsJsonAsync($"api/conversations/{c}/share", new { messageId = Guid.NewGuid() }, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, badMessage.StatusCode);
        Assert.Contains("messageId", await badMessage.Content.ReadAsStringAsync(Ct));
        var empty = await owner.CreateConversationAsync();
        Assert.Equal(HttpStatusCode.BadRequest, (await owner.Http.PostAsJsonAsync($"api/conversations/{empty}/share", new { }, Ct)).StatusCode);
    }

    private async Task<List<JsonElement>> AuditAsync(string query)
    {
        var page = await fx.Admin.Http.GetFromJsonAsync<JsonElement>($"api/admin/audit?limit=200&{query}", Ct);
        return page.GetProperty("items").EnumerateArray().ToList();
    }

    private static void One(List<JsonElement> entries, string action, string outcome = "success")
    {
        var matching = entries.Where(e => e.GetProperty("action").GetString() == action).ToList();
        Assert.True(matching.Count == 1, $"{action}: {matching.Count} entries in {JsonSerializer.Serialize(entries)}");
        Assert.Equal(outcome, matching[0].GetProperty("outcome").GetString());
        Assert.False(string.IsNullOrEmpty(matching[0].GetProperty("ip").GetString()));
    }

    [Fact]
    public async Task EachAuditedActionWritesExactlyOneEntryWithActorTargetIpAndUserAgent()
    {
        var u = await fx.CreateUserAsync();
        var userEntries = await AuditAsync($"target=user:{u.Id}");
        One(userEntries, "auth.register");
        One(userEntries, "auth.sign_in");
        Assert.Equal(2, userEntries.Count);

        var bad = await fx.Api.CreateClient().PostAsJsonAsync("api/auth/login", new { email = u.Email, password = "Wrong-pass1" }, Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, bad.StatusCode);
        var failures = await AuditAsync($"target=user:{u.Id}&outcome=failure");
        One(failures, "auth.sign_in", "failure");
        Assert.Equal(u.Email, failures[0].GetProperty("actorEmail").GetString());

        var key = await (await u.Http.PostAsJsonAsync("api/keys", new { name = "audit" }, Ct)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        var keyId = key.GetProperty("id").GetGuid();
        Assert.Equal(HttpStatusCode.NoContent, (await u.Http.DeleteAsync($"api/keys/{keyId}", Ct)).StatusCode);
        var keyEntries = await AuditAsync($"target=api_key:{keyId}");
        One(keyEntries, "api_key.created");
        One(keyEntries, "api_key.revoked");
        Assert.All(keyEntries, e => Assert.Equal(u.Id, e.GetProperty("actorId").GetGuid()));

        var c = await u.CreateConversationAsync();
        await AnsweredAsync(u, c, new { content = "hello" });
        await u.Http.PostAsJsonAsync($"api/conversations/{c}/share", new { }, Ct);
        await u.Http.DeleteAsync($"api/conversations/{c}/share", Ct);
        var shareEntries = await AuditAsync($"target=conversation:{c}");
        One(shareEntries, "share.created");
        One(shareEntries, "share.revoked");

        using var withAgent = new HttpRequestMessage(HttpMethod.Patch, $"api/admin/users/{u.Id}") { Content = JsonContent.Create(new { monthlyBudgetUsd = 12.5m }) };
        withAgent.Headers.UserAgent.ParseAdd("audit-test/1.0");
        Assert.Equal(HttpStatusCode.OK, (await fx.Admin.Http.SendAsync(withAgent, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await fx.Admin.Http.PostAsync($"api/admin/users/{u.Id}/disable", null, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await fx.Admin.Http.PostAsync($"api/admin/users/{u.Id}/enable", null, Ct)).StatusCode);
        var adminEntries = await AuditAsync($"target=user:{u.Id}&actorId={fx.Admin.Id}");
        One(adminEntries, "user.budget_changed");
        One(adminEntries, "user.disabled");
        One(adminEntries, "user.enabled");
        var budget = adminEntries.Single(e => e.GetProperty("action").GetString() == "user.budget_changed");
        Assert.Equal("default -> $12.50", budget.GetProperty("detail").GetString());
        Assert.Equal("audit-test/1.0", budget.GetProperty("userAgent").GetString());
        Assert.Equal(fx.Admin.Email, budget.GetProperty("actorEmail").GetString());

        Assert.Single(await AuditAsync($"target=user:{u.Id}&action=user.disabled"));
    }

    [Fact]
    public async Task AuditLogIsForAdministratorsOnlyAndPagesWithACursor()
    {
        var u = await fx.CreateUserAsync();
        var r = await u.Http.GetAsync("api/admin/audit", Ct);
        Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await fx.Api.CreateClient().GetAsync("api/admin/audit", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await fx.Admin.Http.GetAsync("api/admin/audit?limit=0", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await fx.Admin.Http.GetAsync("api/admin/audit?cursor=nonsense", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await fx.Admin.Http.GetAsync("api/admin/audit?outcome=maybe", Ct)).StatusCode);

        for (var i = 0; i < 3; i++)
        {
            await u.Http.PostAsJsonAsync("api/keys", new { name = $"k{i}" }, Ct);
        }
        var seen = new List<Guid>();
        string? cursor = null;
        do
        {
            var page = await fx.Admin.Http.GetFromJsonAsync<JsonElement>(
                $"api/admin/audit?limit=2&actorId={u.Id}&action=api_key.created" + (cursor is null ? "" : $"&cursor={cursor}"), Ct);
            seen.AddRange(page.GetProperty("items").EnumerateArray().Select(e => e.GetProperty("id").GetGuid()));
            cursor = page.GetProperty("nextCursor").GetString();
        }
        while (cursor is not null);
        Assert.Equal(3, seen.Count);
        Assert.Equal(3, seen.Distinct().Count());
    }

    [Fact]
    public async Task NoPasswordKeyOrTokenAppearsInAnyAuditEntry()
    {
        var password = "Canary-Pw1-" + Guid.NewGuid().ToString("N")[..10];
        var u = await fx.CreateUserAsync(password);
        var wrong = "Canary-Wrong1-" + Guid.NewGuid().ToString("N")[..10];
        await fx.Api.CreateClient().PostAsJsonAsync("api/auth/login", new { email = u.Email, password = wrong }, Ct);
        var key = (await (await u.Http.PostAsJsonAsync("api/keys", new { name = "canary" }, Ct)).Content.ReadFromJsonAsync<JsonElement>(Ct))
            .GetProperty("key").GetString()!;
        var c = await u.CreateConversationAsync();
        await AnsweredAsync(u, c, new { content = "canary text" });
        var share = (await (await u.Http.PostAsJsonAsync($"api/conversations/{c}/share", new { }, Ct)).Content.ReadFromJsonAsync<JsonElement>(Ct))
            .GetProperty("token").GetString()!;
        var bearer = u.Http.DefaultRequestHeaders.Authorization!.Parameter!;

        var all = new System.Text.StringBuilder();
        string? cursor = null;
        do
        {
            var page = await fx.Admin.Http.GetFromJsonAsync<JsonElement>("api/admin/audit?limit=200" + (cursor is null ? "" : $"&cursor={cursor}"), Ct);
            all.Append(page.GetProperty("items").GetRawText());
            cursor = page.GetProperty("nextCursor").GetString();
        }
        while (cursor is not null);
        var text = all.ToString();
        Assert.Contains(u.Email, text);
        foreach (var secret in new[] { password, wrong, key, key[3..], share, bearer, u.RefreshToken })
        {
            Assert.DoesNotContain(secret, text);
        }
    }
}

public sealed class SqliteSharingAndAuditTests(SqliteServiceFixture fx) : SharingAndAuditTests<SqliteServiceFixture>(fx), IClassFixture<SqliteServiceFixture>;

public sealed class PostgresSharingAndAuditTests(PostgresServiceFixture fx) : SharingAndAuditTests<PostgresServiceFixture>(fx), IClassFixture<PostgresServiceFixture>;
