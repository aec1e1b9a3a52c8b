using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;

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

        var upload = await u.UploadAsync("audited.txt", System.Text.Encoding.UTF8.GetBytes("audited words"));
        var fileId = (await upload.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetGuid();
        await u.Http.DeleteAsync($"api/files/{fileId}", Ct);
        var fileEntries = await AuditAsync($"target=file:{fileId}");
        One(fileEntries, "file.uploaded");
        One(fileEntries, "file.deleted");

        using var withAgent = new HttpRequestMessage(HttpMethod.Patch, $"api/admin/users/{u.Id}") { Content = JsonContent.Create(new { monthlyBudgetUsd = 12.5m }) };
        withAgent.Headers.UserAgent.ParseAdd("audit-test/1.0");
        Assert.Equal(HttpStatusCode.OK, (await fx.Admin.Http.SendAsync(withAgent, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await fx.Admin.Http.PostAsync($"api/admin/users/{u.Id}/disable", null, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await fx.Admin.Http.PostAsync($"api/admin/users/{u.Id}/enable", null, Ct)).StatusCode);
        // Granting twice changes nothing the second time, so it is recorded once.
        Assert.Equal(HttpStatusCode.NoContent, (await fx.Admin.Http.PostAsync($"api/admin/users/{u.Id}/admin", null, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await fx.Admin.Http.PostAsync($"api/admin/users/{u.Id}/admin", null, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await fx.Admin.Http.DeleteAsync($"api/admin/users/{u.Id}/admin", Ct)).StatusCode);
        var adminEntries = await AuditAsync($"target=user:{u.Id}&actorId={fx.Admin.Id}");
        One(adminEntries, "user.budget_changed");
        One(adminEntries, "user.disabled");
        One(adminEntries, "user.enabled");
        One(adminEntries, "user.role_granted");
        Assert.Equal("admin", adminEntries.Single(e => e.GetProperty("action").GetString() == "user.role_granted").GetProperty("detail").GetString());
        One(adminEntries, "user.role_revoked");
        Assert.Equal("admin", adminEntries.Single(e => e.GetProperty("action").GetString() == "user.role_revoked").GetProperty("detail").GetString());
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

    /// <summary>The ledger line of an answer is written as the answer completes: wait until they are all there.</summary>
    private static async Task WaitForUsageAsync(TestUser u, int requests)
    {
        for (var i = 0; i < 200 && (await u.Http.GetFromJsonAsync<JsonElement>("api/usage", Ct)).GetProperty("totals").GetProperty("requests").GetInt32() < requests; i++)
        {
            await Task.Delay(100, Ct);
        }
    }

    [Fact]
    public async Task ExportIsAZipWithEveryMessageOfEveryBranchAndNothingOfOtherUsers()
    {
        var u = await fx.CreateUserAsync();
        var other = await fx.CreateUserAsync();
        var theirs = await other.CreateConversationAsync();
        await AnsweredAsync(other, theirs, new { content = "someone else's secret" });
        var c = await u.CreateConversationAsync(new { title = "Branches" });
        await AnsweredAsync(u, c, new { content = "first branch words" });
        await AnsweredAsync(u, c, new { content = "second branch words", parentMessageId = (Guid?)null });
        await u.Http.PostAsJsonAsync("api/keys", new { name = "export key" }, Ct);
        await WaitForUsageAsync(u, 2);
        var folder = (await (await u.Http.PostAsJsonAsync("api/folders", new { name = "Exported folder" }, Ct)).Content.ReadFromJsonAsync<JsonElement>(Ct))
            .GetProperty("id").GetGuid();
        await u.Http.PatchAsJsonAsync($"api/conversations/{c}", new { folderId = folder, pinned = true }, Ct);
        await u.Http.PostAsJsonAsync("api/prompts", new { title = "Exported prompt", command = "exp", text = "the saved prompt text" }, Ct);
        var rated = (await u.GetConversationAsync(c))["messages"]!.AsArray().First(m => m!["role"]!.GetValue<string>() == "assistant")!["id"]!.GetValue<Guid>();
        Assert.Equal(HttpStatusCode.OK, (await u.Http.PutAsJsonAsync($"api/conversations/{c}/messages/{rated}/feedback", new { rating = "down", comment = "exported comment" }, Ct)).StatusCode);
        var stored = (await u.GetConversationAsync(c))["messages"]!.AsArray().Select(m => m!["id"]!.GetValue<Guid>()).ToHashSet();
        Assert.Equal(4, stored.Count);

        var r = await u.Http.GetAsync("api/me/export", Ct);
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal("application/zip", r.Content.Headers.ContentType?.MediaType);
        using var zip = new System.IO.Compression.ZipArchive(await r.Content.ReadAsStreamAsync(Ct));
        string Read(string name)
        {
            using var reader = new StreamReader(zip.GetEntry(name)!.Open());
            return reader.ReadToEnd();
        }
        var account = JsonNode.Parse(Read("account.json"))!;
        Assert.Equal(u.Email, account["email"]!.GetValue<string>());
        var exported = JsonNode.Parse(Read($"conversations/{c}.json"))!["conversation"]!["messages"]!.AsArray()
            .Select(m => m!["id"]!.GetValue<Guid>()).ToHashSet();
        Assert.Equal(stored, exported);
        var markdown = Read($"conversations/{c}.md");
        Assert.Contains("first branch words", markdown);
        Assert.Contains("second branch words", markdown);
        Assert.Contains("export key", Read("api-keys.json"));
        Assert.Equal(2, JsonNode.Parse(Read("usage.json"))!.AsArray().Count);
        var exportedFolder = JsonNode.Parse(Read("folders.json"))!.AsArray().Single()!;
        Assert.Equal("Exported folder", exportedFolder["name"]!.GetValue<string>());
        var conversation = JsonNode.Parse(Read($"conversations/{c}.json"))!["conversation"]!;
        Assert.Equal(folder, conversation["folderId"]!.GetValue<Guid>());
        Assert.True(conversation["pinned"]!.GetValue<bool>());
        var prompt = JsonNode.Parse(Read("prompts.json"))!.AsArray().Single()!;
        Assert.Equal(("Exported prompt", "exp", "the saved prompt text"), (prompt["title"]!.GetValue<string>(), prompt["command"]!.GetValue<string>(), prompt["text"]!.GetValue<string>()));
        var feedback = JsonNode.Parse(Read("feedback.json"))!.AsArray().Single()!;
        Assert.Equal((rated, "down", "exported comment"), (feedback["messageId"]!.GetValue<Guid>(), feedback["rating"]!.GetValue<string>(), feedback["comment"]!.GetValue<string>()));
        Assert.DoesNotContain(zip.Entries, e => e.FullName.Contains(theirs.ToString(), StringComparison.Ordinal));
        Assert.DoesNotContain(zip.Entries, e => Read(e.FullName).Contains("someone else's secret", StringComparison.Ordinal));

        One(await AuditAsync($"target=user:{u.Id}&action=account.exported"), "account.exported");
    }

    /// <summary>Rows of every table of the EF model where any column holds <paramref name="value"/> (a user id or email).</summary>
    private async Task<List<string>> RowsHoldingAsync(string value)
    {
        await using var db = fx.OpenDatabase();
        var postgres = db.Provider == Jackcwf.Api.Data.DatabaseProvider.PostgreSql;
        var found = new List<string>();
        var connection = db.Database.GetDbConnection();
        await connection.OpenAsync(Ct);
        foreach (var entity in db.Model.GetEntityTypes().Where(e => e.GetTableName() is not null))
        {
            var table = entity.GetTableName()!;
            var store = Microsoft.EntityFrameworkCore.Metadata.StoreObjectIdentifier.Table(table, entity.GetSchema());
            foreach (var column in entity.GetProperties().Select(p => p.GetColumnName(store)).OfType<string>().Distinct())
            {
                await using var cmd = connection.CreateCommand();
                cmd.CommandText = postgres
                    ? $"SELECT COUNT(*) FROM \"{table}\" WHERE CAST(\"{column}\" AS text) ILIKE @v"
                    : $"SELECT COUNT(*) FROM \"{table}\" WHERE upper(CAST(\"{column}\" AS TEXT)) LIKE upper(@v)";
                var p = cmd.CreateParameter();
                p.ParameterName = "@v";
                p.Value = "%" + value + "%";
                cmd.Parameters.Add(p);
                if (Convert.ToInt64(await cmd.ExecuteScalarAsync(Ct)) > 0)
                {
                    found.Add($"{table}.{column}");
                }
            }
        }
        return found;
    }

    [Fact]
    public async Task DeletingAnAccountLeavesNoRowOfItInAnyTableAndItsKeysAndTokensStopAtOnce()
    {
        var u = await fx.CreateUserAsync();
        var c = await u.CreateConversationAsync(new { title = "to be deleted" });
        await AnsweredAsync(u, c, new { content = "delete me please" });
        var keyed = await u.SendAsync(c, new { content = "with a key" }, idempotencyKey: "idem-delete");
        await u.WaitForMessageAsync(c, keyed.GetProperty("assistantMessage").GetProperty("id").GetGuid(), m => m["status"]!.GetValue<string>() == "complete");
        await WaitForUsageAsync(u, 2);
        var key = (await (await u.Http.PostAsJsonAsync("api/keys", new { name = "doomed" }, Ct)).Content.ReadFromJsonAsync<JsonElement>(Ct))
            .GetProperty("key").GetString()!;
        var token = (await (await u.Http.PostAsJsonAsync($"api/conversations/{c}/share", new { }, Ct)).Content.ReadFromJsonAsync<JsonElement>(Ct))
            .GetProperty("token").GetString()!;
        var folder = (await (await u.Http.PostAsJsonAsync("api/folders", new { name = "doomed folder" }, Ct)).Content.ReadFromJsonAsync<JsonElement>(Ct))
            .GetProperty("id").GetGuid();
        Assert.Equal(HttpStatusCode.OK, (await u.Http.PatchAsJsonAsync($"api/conversations/{c}", new { folderId = folder, pinned = true }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await u.Http.PostAsJsonAsync("api/prompts", new { title = "doomed", command = "doomed", text = "doomed prompt" }, Ct)).StatusCode);
        var answer = keyed.GetProperty("assistantMessage").GetProperty("id").GetGuid();
        Assert.Equal(HttpStatusCode.OK, (await u.Http.PutAsJsonAsync($"api/conversations/{c}/messages/{answer}/feedback", new { rating = "up", comment = "doomed" }, Ct)).StatusCode);
        // A document, its chunks and its attachment to the conversation go too.
        var file = await u.UploadReadyAsync("delete-me.txt", System.Text.Encoding.UTF8.GetBytes("A document that goes with its account."));
        Assert.Equal(HttpStatusCode.OK, (await u.Http.PatchAsJsonAsync($"api/conversations/{c}", new { fileIds = new[] { file } }, Ct)).StatusCode);
        var keyClient = fx.Api.CreateClient();
        keyClient.DefaultRequestHeaders.Authorization = new("Bearer", key);
        Assert.Equal(HttpStatusCode.OK, (await keyClient.GetAsync("api/me", Ct)).StatusCode);
        var held = await RowsHoldingAsync(u.Id.ToString());
        // Every table the account writes to is checked below, these among them.
        foreach (var table in new[] { "conversations", "messages", "folders", "saved_prompts", "message_feedback", "share_links", "api_keys", "usage_records" })
        {
            Assert.Contains(held, h => h.StartsWith(table + ".", StringComparison.Ordinal));
        }

        using (var noPassword = new HttpRequestMessage(HttpMethod.Delete, "api/me") { Content = JsonContent.Create(new { }) })
        {
            var r = await u.Http.SendAsync(noPassword, Ct);
            Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
            Assert.Contains("password", await r.Content.ReadAsStringAsync(Ct));
        }
        using (var wrong = new HttpRequestMessage(HttpMethod.Delete, "api/me") { Content = JsonContent.Create(new { password = "Not-the-one1" }) })
        {
            var r = await u.Http.SendAsync(wrong, Ct);
            Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
            Assert.Contains("does not match", await r.Content.ReadAsStringAsync(Ct));
        }
        Assert.Equal(HttpStatusCode.OK, (await keyClient.GetAsync("api/me", Ct)).StatusCode);

        using (var delete = new HttpRequestMessage(HttpMethod.Delete, "api/me") { Content = JsonContent.Create(new { password = u.Password }) })
        {
            Assert.Equal(HttpStatusCode.NoContent, (await u.Http.SendAsync(delete, Ct)).StatusCode);
        }
        // Checked before the sign-in attempt below, which is itself audited with the email it tried.
        Assert.Empty(await RowsHoldingAsync(u.Id.ToString()));
        Assert.Empty(await RowsHoldingAsync(u.Email));
        Assert.Equal(HttpStatusCode.Unauthorized, (await u.Http.GetAsync("api/conversations", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await keyClient.GetAsync("api/me", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await keyClient.GetAsync("v1/models", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await fx.Api.CreateClient().GetAsync($"api/shared/{token}", Ct)).StatusCode);
        var refresh = await fx.Api.CreateClient().PostAsJsonAsync("api/auth/refresh", new { refreshToken = u.RefreshToken }, Ct);
        Assert.False(refresh.IsSuccessStatusCode);
        var login = await fx.Api.CreateClient().PostAsJsonAsync("api/auth/login", new { email = u.Email, password = u.Password }, Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, login.StatusCode);
        Assert.Contains(await AuditAsync("action=account.deleted&outcome=success"), e => e.GetProperty("detail").GetString() == "self");
    }

    [Fact]
    public async Task AnAdministratorDeletesAUserTheSameWayAndOthersCannot()
    {
        var u = await fx.CreateUserAsync();
        var other = await fx.CreateUserAsync();
        await AnsweredAsync(u, await u.CreateConversationAsync(), new { content = "admin removes this" });
        await WaitForUsageAsync(u, 1);
        Assert.Equal(HttpStatusCode.Forbidden, (await other.Http.DeleteAsync($"api/admin/users/{u.Id}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await fx.Admin.Http.DeleteAsync($"api/admin/users/{u.Id}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await fx.Admin.Http.DeleteAsync($"api/admin/users/{u.Id}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await u.Http.GetAsync("api/me", Ct)).StatusCode);
        Assert.Empty(await RowsHoldingAsync(u.Id.ToString()));
        Assert.Empty(await RowsHoldingAsync(u.Email));
        Assert.Equal(HttpStatusCode.OK, (await other.Http.GetAsync("api/me", Ct)).StatusCode);
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
