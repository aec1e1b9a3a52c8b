using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;

namespace Jackcwf.Api.Tests;

/// <summary>
/// Pinned and archived conversations, folders, saved prompts and feedback on answers, and the lease sweeper's settling of
/// an answer its replica left running, on one database.
/// </summary>
public abstract class ComfortsTests<TFixture>(TFixture fx) where TFixture : ServiceFixture
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<HttpResponseMessage> PatchAsync(HttpClient http, string url, object body) =>
        await http.PatchAsJsonAsync(url, body, Ct);

    private static async Task<JsonElement> JsonAsync(HttpResponseMessage r, HttpStatusCode expected)
    {
        var text = await r.Content.ReadAsStringAsync(Ct);
        Assert.True(r.StatusCode == expected, $"{(int)r.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    /// <summary>A 400 problem+json whose errors name <paramref name="field"/>.</summary>
    private static async Task AssertInvalidAsync(HttpResponseMessage r, string field)
    {
        var text = await r.Content.ReadAsStringAsync(Ct);
        Assert.True(r.StatusCode == HttpStatusCode.BadRequest, $"{(int)r.StatusCode} {text}");
        Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
        var errors = JsonNode.Parse(text)!["errors"]!.AsObject();
        Assert.True(errors.ContainsKey(field), $"{field} not named in {text}");
    }

    private static async Task AssertNotFoundAsync(Task<HttpResponseMessage> request)
    {
        var r = await request;
        Assert.True(r.StatusCode == HttpStatusCode.NotFound, $"{(int)r.StatusCode} {await r.Content.ReadAsStringAsync(Ct)}");
        Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
    }

    private static async Task<Guid[]> ListAsync(TestUser u, string query = "")
    {
        var page = await u.Http.GetFromJsonAsync<JsonElement>("api/conversations?limit=100" + query, Ct);
        return page.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("id").GetGuid()).ToArray();
    }

    private static async Task<Guid> FolderAsync(TestUser u, string name) =>
        (await JsonAsync(await u.Http.PostAsJsonAsync("api/folders", new { name }, Ct), HttpStatusCode.Created)).GetProperty("id").GetGuid();

    private static async Task<Guid> PromptAsync(TestUser u, object body) =>
        (await JsonAsync(await u.Http.PostAsJsonAsync("api/prompts", body, Ct), HttpStatusCode.Created)).GetProperty("id").GetGuid();

    private static async Task<(Guid User, Guid Assistant)> AnsweredAsync(TestUser u, Guid conversation, string content)
    {
        var sent = await u.SendAsync(conversation, new { content });
        var assistant = sent.GetProperty("assistantMessage").GetProperty("id").GetGuid();
        await u.WaitForMessageAsync(conversation, assistant, m => m["status"]!.GetValue<string>() == "complete");
        return (sent.GetProperty("userMessage").GetProperty("id").GetGuid(), assistant);
    }

    [Fact]
    public async Task PinnedConversationsComeFirstOnEveryPageAndArchivedOnesOnlyInTheArchive()
    {
        var u = await fx.CreateUserAsync();
        var oldest = await u.CreateConversationAsync(new { title = "oldest" });
        var middle = await u.CreateConversationAsync(new { title = "middle" });
        var newest = await u.CreateConversationAsync(new { title = "newest" });
        var before = (await u.GetConversationAsync(oldest))["updatedAt"]!.GetValue<DateTime>();

        var pinned = await JsonAsync(await PatchAsync(u.Http, $"api/conversations/{oldest}", new { pinned = true }), HttpStatusCode.OK);
        Assert.True(pinned.GetProperty("pinned").GetBoolean());
        Assert.False(pinned.GetProperty("archived").GetBoolean());
        // Pinning does not make a conversation recent.
        Assert.Equal(before, pinned.GetProperty("updatedAt").GetDateTime());
        Assert.Equal([oldest, newest, middle], await ListAsync(u));

        // Page by page (one per page) the order is the same: the cursor crosses from the pinned part to the rest.
        var paged = new List<Guid>();
        string? cursor = null;
        do
        {
            var page = await u.Http.GetFromJsonAsync<JsonElement>("api/conversations?limit=1" + (cursor is null ? "" : $"&cursor={cursor}"), Ct);
            paged.AddRange(page.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("id").GetGuid()));
            cursor = page.GetProperty("nextCursor").GetString();
        }
        while (cursor is not null && paged.Count < 10);
        Assert.Equal([oldest, newest, middle], paged);

        var archived = await JsonAsync(await PatchAsync(u.Http, $"api/conversations/{newest}", new { archived = true }), HttpStatusCode.OK);
        Assert.True(archived.GetProperty("archived").GetBoolean());
        Assert.Equal([oldest, middle], await ListAsync(u));
        Assert.Equal([newest], await ListAsync(u, "&archived=true"));
        Assert.Equal([newest], await ListAsync(u, "&archived=true&q=newest"));
        Assert.Empty(await ListAsync(u, "&q=newest"));
        // An archived conversation still opens, and says it is archived.
        Assert.True((await u.GetConversationAsync(newest))["archived"]!.GetValue<bool>());
        Assert.True((await u.Http.GetFromJsonAsync<JsonObject>($"api/conversations/{newest}?limit=10", Ct))!["archived"]!.GetValue<bool>());

        await JsonAsync(await PatchAsync(u.Http, $"api/conversations/{newest}", new { archived = false }), HttpStatusCode.OK);
        await JsonAsync(await PatchAsync(u.Http, $"api/conversations/{oldest}", new { pinned = false }), HttpStatusCode.OK);
        Assert.Equal([newest, middle, oldest], await ListAsync(u));

        await AssertInvalidAsync(await u.Http.GetAsync("api/conversations?archived=maybe", Ct), "archived");
        await AssertInvalidAsync(await PatchAsync(u.Http, $"api/conversations/{oldest}", new { pinned = "yes" }), "pinned");
        await AssertInvalidAsync(await u.Http.GetAsync("api/conversations?cursor=cG5vdA", Ct), "cursor");
    }

    [Fact]
    public async Task FoldersHoldConversationsAndDeletingOneMovesThemOutWithoutDeletingThem()
    {
        var u = await fx.CreateUserAsync();
        var work = await FolderAsync(u, "Work");
        var home = await FolderAsync(u, "home");
        var a = await u.CreateConversationAsync(new { title = "report" });
        var b = await u.CreateConversationAsync(new { title = "groceries" });
        var loose = await u.CreateConversationAsync(new { title = "loose" });

        var moved = await JsonAsync(await PatchAsync(u.Http, $"api/conversations/{a}", new { folderId = work }), HttpStatusCode.OK);
        Assert.Equal(work, moved.GetProperty("folderId").GetGuid());
        await JsonAsync(await PatchAsync(u.Http, $"api/conversations/{b}", new { folderId = home }), HttpStatusCode.OK);
        Assert.Equal([a], await ListAsync(u, $"&folderId={work}"));
        Assert.Equal([b], await ListAsync(u, $"&folderId={home}"));
        Assert.Equal([loose], await ListAsync(u, "&folderId=none"));
        Assert.Equal(3, (await ListAsync(u)).Length);

        var folders = (await u.Http.GetFromJsonAsync<JsonElement>("api/folders", Ct)).GetProperty("items").EnumerateArray().ToList();
        Assert.Equal(["home", "Work"], folders.Select(f => f.GetProperty("name").GetString()));
        Assert.All(folders, f => Assert.Equal(1, f.GetProperty("conversationCount").GetInt32()));

        var renamed = await JsonAsync(await PatchAsync(u.Http, $"api/folders/{work}", new { name = "  Projects " }), HttpStatusCode.OK);
        Assert.Equal("Projects", renamed.GetProperty("name").GetString());
        Assert.Equal(HttpStatusCode.Conflict, (await u.Http.PostAsJsonAsync("api/folders", new { name = "HOME" }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, (await PatchAsync(u.Http, $"api/folders/{work}", new { name = "Home" })).StatusCode);
        await AssertInvalidAsync(await u.Http.PostAsJsonAsync("api/folders", new { name = "  " }, Ct), "name");
        await AssertInvalidAsync(await u.Http.PostAsJsonAsync("api/folders", new { name = new string('x', 101) }, Ct), "name");
        await AssertInvalidAsync(await u.Http.PostAsJsonAsync("api/folders", new { }, Ct), "name");
        await AssertInvalidAsync(await u.Http.GetAsync("api/conversations?folderId=nonsense", Ct), "folderId");
        await AssertInvalidAsync(await PatchAsync(u.Http, $"api/conversations/{a}", new { folderId = 12 }), "folderId");

        // Taking a conversation out of its folder: folderId null.
        var outOf = await JsonAsync(await PatchAsync(u.Http, $"api/conversations/{b}", new { folderId = (Guid?)null }), HttpStatusCode.OK);
        Assert.Equal(JsonValueKind.Null, outOf.GetProperty("folderId").ValueKind);
        Assert.Equal(2, (await ListAsync(u, "&folderId=none")).Length);

        Assert.Equal(HttpStatusCode.NoContent, (await u.Http.DeleteAsync($"api/folders/{work}", Ct)).StatusCode);
        var kept = await u.GetConversationAsync(a);
        Assert.Equal("report", kept["title"]!.GetValue<string>());
        Assert.Null(kept["folderId"]);
        Assert.Equal(3, (await ListAsync(u, "&folderId=none")).Length);
        await AssertNotFoundAsync(u.Http.GetAsync($"api/conversations?folderId={work}", Ct));
        await AssertNotFoundAsync(u.Http.DeleteAsync($"api/folders/{work}", Ct));
        await AssertNotFoundAsync(PatchAsync(u.Http, $"api/conversations/{a}", new { folderId = work }));
        Assert.Equal(["home"], (await u.Http.GetFromJsonAsync<JsonElement>("api/folders", Ct)).GetProperty("items").EnumerateArray()
            .Select(f => f.GetProperty("name").GetString()));
    }

    [Fact]
    public async Task SavedPromptsAreValidatedAndTheirCommandsAreUniquePerUser()
    {
        var u = await fx.CreateUserAsync();
        var other = await fx.CreateUserAsync();
        var summarise = await PromptAsync(u, new { title = "Summarise", command = "/Summarise", text = "Summarise the text below in three bullet points." });
        await PromptAsync(u, new { title = "Answer briefly", text = "Answer in one sentence." });
        // Commands are per user: another user may use the same one.
        await PromptAsync(other, new { title = "Mine", command = "summarise", text = "Someone else's." });

        var items = (await u.Http.GetFromJsonAsync<JsonElement>("api/prompts", Ct)).GetProperty("items").EnumerateArray().ToList();
        Assert.Equal(["Answer briefly", "Summarise"], items.Select(i => i.GetProperty("title").GetString()));
        Assert.Equal("summarise", items[1].GetProperty("command").GetString());
        Assert.Equal(JsonValueKind.Null, items[0].GetProperty("command").ValueKind);

        var taken = await u.Http.PostAsJsonAsync("api/prompts", new { title = "Again", command = "summarise", text = "x" }, Ct);
        Assert.Equal(HttpStatusCode.Conflict, taken.StatusCode);
        Assert.Contains("command", await taken.Content.ReadAsStringAsync(Ct));
        await AssertInvalidAsync(await u.Http.PostAsJsonAsync("api/prompts", new { title = "Bad", command = "two words", text = "x" }, Ct), "command");
        await AssertInvalidAsync(await u.Http.PostAsJsonAsync("api/prompts", new { title = "No text" }, Ct), "text");
        await AssertInvalidAsync(await u.Http.PostAsJsonAsync("api/prompts", new { text = "no title" }, Ct), "title");
        await AssertInvalidAsync(await u.Http.PostAsJsonAsync("api/prompts", new { title = "Long", text = new string('x', 20_001) }, Ct), "text");
        await AssertInvalidAsync(await PatchAsync(u.Http, $"api/prompts/{summarise}", new { }), "body");

        var edited = await JsonAsync(await PatchAsync(u.Http, $"api/prompts/{summarise}", new { text = "Summarise in two bullets.", command = "" }), HttpStatusCode.OK);
        Assert.Equal("Summarise in two bullets.", edited.GetProperty("text").GetString());
        Assert.Equal("Summarise", edited.GetProperty("title").GetString());
        Assert.Equal(JsonValueKind.Null, edited.GetProperty("command").ValueKind);
        // The command is free again.
        await PromptAsync(u, new { title = "Other", command = "summarise", text = "y" });

        Assert.Equal(HttpStatusCode.NoContent, (await u.Http.DeleteAsync($"api/prompts/{summarise}", Ct)).StatusCode);
        await AssertNotFoundAsync(u.Http.DeleteAsync($"api/prompts/{summarise}", Ct));
        Assert.Equal(2, (await u.Http.GetFromJsonAsync<JsonElement>("api/prompts", Ct)).GetProperty("items").GetArrayLength());
    }

    [Fact]
    public async Task AnotherUsersConversationFolderPromptAndMessageAreNotFoundEverywhere()
    {
        var owner = await fx.CreateUserAsync();
        var other = await fx.CreateUserAsync();
        var folder = await FolderAsync(owner, "Private");
        var prompt = await PromptAsync(owner, new { title = "Private", text = "owner's prompt" });
        var c = await owner.CreateConversationAsync(new { title = "owner's" });
        var (userMessage, answer) = await AnsweredAsync(owner, c, "owner's words");
        await JsonAsync(await owner.Http.PutAsJsonAsync($"api/conversations/{c}/messages/{answer}/feedback", new { rating = "up" }, Ct), HttpStatusCode.OK);
        var theirs = await other.CreateConversationAsync();
        var (_, theirAnswer) = await AnsweredAsync(other, theirs, "their words");

        await AssertNotFoundAsync(PatchAsync(other.Http, $"api/conversations/{c}", new { pinned = true }));
        await AssertNotFoundAsync(PatchAsync(other.Http, $"api/conversations/{c}", new { archived = true }));
        await AssertNotFoundAsync(PatchAsync(other.Http, $"api/conversations/{c}", new { folderId = (Guid?)null }));
        await AssertNotFoundAsync(PatchAsync(other.Http, $"api/conversations/{theirs}", new { folderId = folder }));
        await AssertNotFoundAsync(other.Http.GetAsync($"api/conversations?folderId={folder}", Ct));
        await AssertNotFoundAsync(PatchAsync(other.Http, $"api/folders/{folder}", new { name = "stolen" }));
        await AssertNotFoundAsync(other.Http.DeleteAsync($"api/folders/{folder}", Ct));
        await AssertNotFoundAsync(PatchAsync(other.Http, $"api/prompts/{prompt}", new { title = "stolen" }));
        await AssertNotFoundAsync(other.Http.DeleteAsync($"api/prompts/{prompt}", Ct));
        await AssertNotFoundAsync(other.Http.PutAsJsonAsync($"api/conversations/{c}/messages/{answer}/feedback", new { rating = "down" }, Ct));
        await AssertNotFoundAsync(other.Http.DeleteAsync($"api/conversations/{c}/messages/{answer}/feedback", Ct));
        // Their own conversation id with the owner's message id is no way in either.
        await AssertNotFoundAsync(other.Http.PutAsJsonAsync($"api/conversations/{theirs}/messages/{answer}/feedback", new { rating = "down" }, Ct));
        await AssertNotFoundAsync(other.Http.DeleteAsync($"api/conversations/{theirs}/messages/{answer}/feedback", Ct));
        // Nor is the owner's conversation id with their own message.
        await AssertNotFoundAsync(owner.Http.PutAsJsonAsync($"api/conversations/{c}/messages/{theirAnswer}/feedback", new { rating = "up" }, Ct));

        Assert.Empty((await other.Http.GetFromJsonAsync<JsonElement>("api/folders", Ct)).GetProperty("items").EnumerateArray());
        Assert.Empty((await other.Http.GetFromJsonAsync<JsonElement>("api/prompts", Ct)).GetProperty("items").EnumerateArray());
        Assert.DoesNotContain(c, await ListAsync(other));

        // Nothing of the owner's changed.
        var kept = await owner.GetConversationAsync(c);
        Assert.False(kept["pinned"]!.GetValue<bool>());
        Assert.False(kept["archived"]!.GetValue<bool>());
        var message = kept["messages"]!.AsArray().Single(m => m!["id"]!.GetValue<Guid>() == answer)!;
        Assert.Equal("up", message["feedback"]!["rating"]!.GetValue<string>());
        Assert.Null(kept["messages"]!.AsArray().Single(m => m!["id"]!.GetValue<Guid>() == userMessage)!["feedback"]);
        Assert.Equal(["Private"], (await owner.Http.GetFromJsonAsync<JsonElement>("api/folders", Ct)).GetProperty("items").EnumerateArray()
            .Select(f => f.GetProperty("name").GetString()));
        Assert.Equal("Private", (await owner.Http.GetFromJsonAsync<JsonElement>("api/prompts", Ct)).GetProperty("items")[0].GetProperty("title").GetString());
    }

    private async Task<Dictionary<string, (int Up, int Down)>> RatingsByModelAsync()
    {
        var report = await fx.Admin.Http.GetFromJsonAsync<JsonElement>("api/admin/usage", Ct);
        return report.GetProperty("byModel").EnumerateArray().ToDictionary(
            m => m.GetProperty("model").GetString()!, m => (m.GetProperty("thumbsUp").GetInt32(), m.GetProperty("thumbsDown").GetInt32()));
    }

    [Fact]
    public async Task FeedbackIsStoredReturnedWithTheAnswerAndCountedPerModelForAdministratorsOnly()
    {
        var u = await fx.CreateUserAsync();
        var before = await RatingsByModelAsync();
        var echo = await u.CreateConversationAsync(new { model = "demo/echo" });
        var (question, first) = await AnsweredAsync(u, echo, "rate this answer");
        var (_, second) = await AnsweredAsync(u, echo, "and this one");
        var gpt = await u.CreateConversationAsync(new { model = "openai/gpt-4o-mini" });
        var (_, third) = await AnsweredAsync(u, gpt, "a question for the other model");

        var up = await JsonAsync(await u.Http.PutAsJsonAsync($"api/conversations/{echo}/messages/{first}/feedback", new { rating = "up" }, Ct), HttpStatusCode.OK);
        Assert.Equal("up", up.GetProperty("rating").GetString());
        await JsonAsync(await u.Http.PutAsJsonAsync($"api/conversations/{echo}/messages/{second}/feedback", new { rating = "up" }, Ct), HttpStatusCode.OK);
        // A second rating replaces the first.
        var down = await JsonAsync(await u.Http.PutAsJsonAsync($"api/conversations/{echo}/messages/{second}/feedback",
            new { rating = "down", comment = "  repeated my words  " }, Ct), HttpStatusCode.OK);
        Assert.Equal("repeated my words", down.GetProperty("comment").GetString());
        await JsonAsync(await u.Http.PutAsJsonAsync($"api/conversations/{gpt}/messages/{third}/feedback", new { rating = "down" }, Ct), HttpStatusCode.OK);

        // Returned with the message, whole and paged.
        var whole = (await u.GetConversationAsync(echo))["messages"]!.AsArray().ToDictionary(m => m!["id"]!.GetValue<Guid>(), m => m!["feedback"]);
        Assert.Equal("up", whole[first]!["rating"]!.GetValue<string>());
        Assert.Equal("down", whole[second]!["rating"]!.GetValue<string>());
        Assert.Equal("repeated my words", whole[second]!["comment"]!.GetValue<string>());
        var paged = (await u.Http.GetFromJsonAsync<JsonObject>($"api/conversations/{echo}?limit=2", Ct))!["messages"]!.AsArray();
        Assert.Equal("down", paged.Single(m => m!["id"]!.GetValue<Guid>() == second)!["feedback"]!["rating"]!.GetValue<string>());

        var after = await RatingsByModelAsync();
        (int Up, int Down) Delta(string model) =>
            (after.GetValueOrDefault(model).Up - before.GetValueOrDefault(model).Up, after.GetValueOrDefault(model).Down - before.GetValueOrDefault(model).Down);
        Assert.Equal((1, 1), Delta("demo/echo"));
        Assert.Equal((0, 1), Delta("openai/gpt-4o-mini"));
        var report = await fx.Admin.Http.GetFromJsonAsync<JsonElement>("api/admin/usage", Ct);
        var echoRow = report.GetProperty("byModel").EnumerateArray().Single(m => m.GetProperty("model").GetString() == "demo/echo");
        Assert.True(echoRow.GetProperty("requests").GetInt32() >= 2);

        // Administrators only.
        Assert.Equal(HttpStatusCode.Forbidden, (await u.Http.GetAsync("api/admin/usage", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await fx.Api.CreateClient().GetAsync("api/admin/usage", Ct)).StatusCode);
        await AssertInvalidAsync(await fx.Admin.Http.GetAsync("api/admin/usage?from=yesterday", Ct), "from");

        // Clearing takes it back (and clearing again is no error).
        Assert.Equal(HttpStatusCode.NoContent, (await u.Http.DeleteAsync($"api/conversations/{echo}/messages/{first}/feedback", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await u.Http.DeleteAsync($"api/conversations/{echo}/messages/{first}/feedback", Ct)).StatusCode);
        Assert.Null((await u.GetConversationAsync(echo))["messages"]!.AsArray().Single(m => m!["id"]!.GetValue<Guid>() == first)!["feedback"]);
        var cleared = await RatingsByModelAsync();
        Assert.Equal(before.GetValueOrDefault("demo/echo").Up, cleared.GetValueOrDefault("demo/echo").Up);

        // Bad input names the field; only answers take feedback.
        await AssertInvalidAsync(await u.Http.PutAsJsonAsync($"api/conversations/{echo}/messages/{first}/feedback", new { rating = "meh" }, Ct), "rating");
        await AssertInvalidAsync(await u.Http.PutAsJsonAsync($"api/conversations/{echo}/messages/{first}/feedback", new { }, Ct), "rating");
        await AssertInvalidAsync(await u.Http.PutAsJsonAsync($"api/conversations/{echo}/messages/{first}/feedback",
            new { rating = "up", comment = new string('x', 2001) }, Ct), "comment");
        await AssertInvalidAsync(await u.Http.PutAsJsonAsync($"api/conversations/{echo}/messages/{question}/feedback", new { rating = "up" }, Ct), "messageId");
        await AssertNotFoundAsync(u.Http.PutAsJsonAsync($"api/conversations/{echo}/messages/{Guid.NewGuid()}/feedback", new { rating = "up" }, Ct));

        // Deleting the conversation takes its feedback with it.
        Assert.Equal(HttpStatusCode.NoContent, (await u.Http.DeleteAsync($"api/conversations/{gpt}", Ct)).StatusCode);
        var gone = await RatingsByModelAsync();
        Assert.Equal(before.GetValueOrDefault("openai/gpt-4o-mini").Down, gone.GetValueOrDefault("openai/gpt-4o-mini").Down);
    }

    [Fact]
    public async Task AnAnswerWhoseReplicaStoppedRenewingItsLeaseIsSettledInterruptedWithItsText()
    {
        var u = await fx.CreateUserAsync();
        var conversation = await u.CreateConversationAsync();
        var (_, assistant) = await AnsweredAsync(u, conversation, "one two three");
        var text = (await u.WaitForMessageAsync(conversation, assistant, _ => true))["content"]!.GetValue<string>();
        await using (var db = fx.OpenDatabase())
        {
            // As its replica left it when it was killed mid-answer: streaming, the lease run out a minute ago.
            var expired = DateTime.UtcNow.AddMinutes(-1);
            Assert.Equal(1, await db.Messages.Where(m => m.Id == assistant).ExecuteUpdateAsync(x => x
                .SetProperty(m => m.Status, Jackcwf.Api.Data.MessageStatuses.Streaming)
                .SetProperty(m => m.CompletedAt, (DateTime?)null)
                .SetProperty(m => m.LeaseExpiresAt, expired), Ct));
        }

        // The lease sweeper (every 10 s with the default 30 s lease) settles it, keeping the checkpointed text.
        var settled = await u.WaitForMessageAsync(conversation, assistant, m => m["status"]!.GetValue<string>() != "streaming", TimeSpan.FromSeconds(60));
        Assert.Equal("interrupted", settled["status"]!.GetValue<string>());
        Assert.Equal(text, settled["content"]!.GetValue<string>());
    }

    [Fact]
    public async Task AConversationWrittenByThePreviousReleaseIsListedUnpinnedUnarchivedAndInNoFolder()
    {
        var u = await fx.CreateUserAsync();
        var id = Guid.CreateVersion7();
        await using (var db = fx.OpenDatabase())
        {
            // The previous release's INSERT: it knows none of the new columns.
            var now = DateTime.UtcNow;
            // SQLite keeps ids as upper-case text (EF's mapping); PostgreSQL as uuid.
            object Id(Guid g) => db.Provider == Jackcwf.Api.Data.DatabaseProvider.Sqlite ? g.ToString().ToUpperInvariant() : g;
            await db.Database.ExecuteSqlAsync(
                $"""INSERT INTO conversations ("Id", "UserId", "Title", "Model", "CreatedAt", "UpdatedAt") VALUES ({Id(id)}, {Id(u.Id)}, {"from before"}, {"demo/echo"}, {now}, {now})""", Ct);
        }
        var listed = (await u.Http.GetFromJsonAsync<JsonElement>("api/conversations?folderId=none", Ct)).GetProperty("items").EnumerateArray().Single();
        Assert.Equal(id, listed.GetProperty("id").GetGuid());
        Assert.False(listed.GetProperty("pinned").GetBoolean());
        Assert.False(listed.GetProperty("archived").GetBoolean());
    }
}

public sealed class SqliteComfortsTests(SqliteServiceFixture fx) : ComfortsTests<SqliteServiceFixture>(fx), IClassFixture<SqliteServiceFixture>;

public sealed class PostgresComfortsTests(PostgresServiceFixture fx) : ComfortsTests<PostgresServiceFixture>(fx), IClassFixture<PostgresServiceFixture>;
