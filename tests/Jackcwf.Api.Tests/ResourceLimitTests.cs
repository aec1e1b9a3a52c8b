using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Jackcwf.Testing;

namespace Jackcwf.Api.Tests;

/// <summary>Tight resource limits (issue 12, "Resource abuse"), so each one can be reached in a test.</summary>
public static class TightLimits
{
    public const int MessagesPerConversation = 10;
    public const int StoredChars = 3000;
    public const int ContextMessages = 4;
    public const int Streams = 2;
    public const int SearchMessages = 4;
    public const int Folders = 3;
    public const int SavedPrompts = 3;

    public static IReadOnlyDictionary<string, string?> Environment => new Dictionary<string, string?>
    {
        ["MAX_MESSAGES_PER_CONVERSATION"] = MessagesPerConversation.ToString(),
        ["MAX_STORED_CHARS_PER_USER"] = StoredChars.ToString(),
        ["CONTEXT_MAX_MESSAGES"] = ContextMessages.ToString(),
        ["MAX_CONCURRENT_STREAMS"] = Streams.ToString(),
        ["SEARCH_MAX_MESSAGES"] = SearchMessages.ToString(),
        ["MAX_FOLDERS_PER_USER"] = Folders.ToString(),
        ["MAX_SAVED_PROMPTS_PER_USER"] = SavedPrompts.ToString(),
    };
}

public sealed class SqliteTightLimitsFixture : ServiceFixture
{
    protected override Task<IReadOnlyDictionary<string, string?>> DatabaseAsync() =>
        Task.FromResult<IReadOnlyDictionary<string, string?>>(new Dictionary<string, string?> { ["DATABASE_URL"] = null });

    protected override IReadOnlyDictionary<string, string?> ExtraEnvironment => TightLimits.Environment;
}

public sealed class PostgresTightLimitsFixture : ServiceFixture
{
    private TestDatabase? _db;

    public TestDatabase Database => _db!;

    protected override async Task<IReadOnlyDictionary<string, string?>> DatabaseAsync()
    {
        _db = await TestPostgres.CreateDatabaseAsync("limits");
        return new Dictionary<string, string?> { ["DATABASE_URL"] = _db.Url };
    }

    protected override IReadOnlyDictionary<string, string?> ExtraEnvironment => TightLimits.Environment;

    protected override async ValueTask DisposeDatabaseAsync()
    {
        if (_db is not null)
        {
            await _db.DisposeAsync();
        }
    }
}

/// <summary>Each test closes one hole of the review and is named after it.</summary>
public abstract class ResourceLimitTests<TFixture>(TFixture fx) where TFixture : ServiceFixture
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    protected TFixture Fx => fx;

    private static async Task<JsonElement> ProblemAsync(HttpResponseMessage r, HttpStatusCode status, string code)
    {
        var body = await r.Content.ReadAsStringAsync(Ct);
        Assert.True(r.StatusCode == status, $"expected {(int)status}, got {(int)r.StatusCode} {body}");
        Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(body).RootElement.Clone();
        Assert.Equal(code, problem.GetProperty("code").GetString());
        return problem;
    }

    private static async Task<HttpResponseMessage> PostMessageAsync(TestUser u, Guid c, object body, string? key = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"api/conversations/{c}/messages") { Content = JsonContent.Create(body) };
        if (key is not null)
        {
            request.Headers.Add("Idempotency-Key", key);
        }
        return await u.Http.SendAsync(request, Ct);
    }

    [Fact]
    public async Task Hole11_IdempotencyKeyReplaysAcrossConversations()
    {
        var u = await fx.CreateUserAsync();
        var first = await u.CreateConversationAsync();
        var second = await u.CreateConversationAsync();
        var key = Guid.NewGuid().ToString();
        var sent = await u.SendAsync(first, new { content = "same words" }, key);

        // The same key and body for another conversation is another request, not a replay of the first.
        var elsewhere = await PostMessageAsync(u, second, new { content = "same words" }, key);
        await ProblemAsync(elsewhere, HttpStatusCode.UnprocessableEntity, "idempotency_key_reused");
        using var streamed = await u.StreamAsync(second, new { content = "same words" }, key);
        await ProblemAsync(streamed, HttpStatusCode.UnprocessableEntity, "idempotency_key_reused");
        Assert.Empty((await u.GetConversationAsync(second))["messages"]!.AsArray());

        // In its own conversation the key still replays.
        var again = await u.SendAsync(first, new { content = "same words" }, key);
        Assert.Equal(sent.GetProperty("assistantMessage").GetProperty("id").GetGuid(), again.GetProperty("assistantMessage").GetProperty("id").GetGuid());
        Assert.Equal(2, (await u.GetConversationAsync(first))["messages"]!.AsArray().Count);
    }

    [Fact]
    public async Task Hole9_ConversationGrowsWithoutBound()
    {
        var u = await fx.CreateUserAsync();
        var c = await u.CreateConversationAsync();
        JsonElement last = default;
        for (var i = 0; i < TightLimits.MessagesPerConversation / 2; i++)
        {
            last = await u.SendAsync(c, new { content = $"turn {i}" });
        }
        var refused = await PostMessageAsync(u, c, new { content = "one too many" });
        var problem = await ProblemAsync(refused, HttpStatusCode.Conflict, "conversation_full");
        Assert.Equal("conversation_messages", problem.GetProperty("limit").GetString());
        Assert.Contains($"at most {TightLimits.MessagesPerConversation} messages (this one has {TightLimits.MessagesPerConversation})", problem.GetProperty("detail").GetString());
        // Regenerating would add an answer: refused too; nothing was stored.
        var userId = last.GetProperty("userMessage").GetProperty("id").GetGuid();
        await ProblemAsync(await PostMessageAsync(u, c, new { parentMessageId = userId }), HttpStatusCode.Conflict, "conversation_full");
        // So is a message with an Idempotency-Key (whose turn reads the conversation another way).
        await ProblemAsync(await PostMessageAsync(u, c, new { content = "keyed" }, Guid.NewGuid().ToString()), HttpStatusCode.Conflict, "conversation_full");
        Assert.Equal(TightLimits.MessagesPerConversation, (await u.GetConversationAsync(c))["messages"]!.AsArray().Count);
        // Another conversation is not affected.
        await u.SendAsync(await u.CreateConversationAsync(), new { content = "fresh start" });
    }

    [Fact]
    public async Task Hole9_UserStorageGrowsWithoutBound()
    {
        var u = await fx.CreateUserAsync();
        // The demo model echoes, so each turn stores twice its text.
        var text = new string('a', 290) + " " + new string('b', 209);
        var conversations = new List<Guid>();
        var stored = 0;
        while (stored + text.Length <= TightLimits.StoredChars)
        {
            var c = await u.CreateConversationAsync();
            conversations.Add(c);
            await u.SendAsync(c, new { content = text });
            stored += 2 * text.Length;
        }
        var full = await u.CreateConversationAsync();
        var refused = await PostMessageAsync(u, full, new { content = text });
        var problem = await ProblemAsync(refused, HttpStatusCode.Conflict, "storage_quota_exceeded");
        Assert.Equal("storage", problem.GetProperty("limit").GetString());
        Assert.Contains($"{stored} of at most {TightLimits.StoredChars}", problem.GetProperty("detail").GetString());
        Assert.Empty((await u.GetConversationAsync(full))["messages"]!.AsArray());

        // Other accounts are not affected, and deleting a conversation makes room again.
        var other = await fx.CreateUserAsync();
        await other.SendAsync(await other.CreateConversationAsync(), new { content = text });
        Assert.Equal(HttpStatusCode.NoContent, (await u.Http.DeleteAsync($"api/conversations/{conversations[0]}", Ct)).StatusCode);
        await u.SendAsync(full, new { content = text });
    }

    [Fact]
    public async Task Hole9_ConversationViewAndExportLoadTheWholeConversation()
    {
        var u = await fx.CreateUserAsync();
        var c = await u.CreateConversationAsync(new { title = "Paged" });
        for (var i = 0; i < TightLimits.MessagesPerConversation / 2; i++)
        {
            await u.SendAsync(c, new { content = $"turn {i}" });
        }

        // Unpaged, as before: every message, oldest first, streamed (no Content-Length).
        using var whole = await u.Http.GetAsync($"api/conversations/{c}", HttpCompletionOption.ResponseHeadersRead, Ct);
        Assert.Null(whole.Content.Headers.ContentLength);
        var all = (await whole.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("messages").EnumerateArray()
            .Select(m => m.GetProperty("id").GetGuid()).ToList();
        Assert.Equal(TightLimits.MessagesPerConversation, all.Count);

        // Paged: the newest page first, each page oldest first, cursors lead back to the first message.
        var pages = new List<List<Guid>>();
        string? cursor = null;
        do
        {
            var page = await u.Http.GetFromJsonAsync<JsonElement>($"api/conversations/{c}?limit=4{(cursor is null ? "" : "&cursor=" + cursor)}", Ct);
            Assert.Equal("Paged", page.GetProperty("title").GetString());
            pages.Add(page.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("id").GetGuid()).ToList());
            cursor = page.GetProperty("nextCursor").GetString();
        }
        while (cursor is not null && pages.Count < 10);
        Assert.Equal([4, 4, 2], pages.Select(p => p.Count));
        Assert.Equal(all, pages.AsEnumerable().Reverse().SelectMany(p => p));
        await ProblemAsync(await u.Http.GetAsync($"api/conversations/{c}?limit=0", Ct), HttpStatusCode.BadRequest, "validation");
        await ProblemAsync(await u.Http.GetAsync($"api/conversations/{c}?limit=2&cursor=nope", Ct), HttpStatusCode.BadRequest, "validation");

        // Exports stream too, with every message.
        using var json = await u.Http.GetAsync($"api/conversations/{c}/export?format=json", HttpCompletionOption.ResponseHeadersRead, Ct);
        Assert.Null(json.Content.Headers.ContentLength);
        Assert.Equal("Paged.json", json.Content.Headers.ContentDisposition?.FileNameStar ?? json.Content.Headers.ContentDisposition?.FileName);
        var exported = await json.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal(all, exported.GetProperty("conversation").GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("id").GetGuid()));
        using var md = await u.Http.GetAsync($"api/conversations/{c}/export?format=markdown", HttpCompletionOption.ResponseHeadersRead, Ct);
        Assert.Null(md.Content.Headers.ContentLength);
        var text = await md.Content.ReadAsStringAsync(Ct);
        Assert.Equal(TightLimits.MessagesPerConversation / 2, text.Split("\n## User\n").Length - 1);
        Assert.EndsWith("turn 4\n", text);
    }

    [Fact]
    public async Task Hole9_WholeConversationIsSentToTheModel()
    {
        var u = await fx.CreateUserAsync();
        var c = await u.CreateConversationAsync(new { model = "openai/gpt-4o-mini", systemPrompt = "Answer like a pirate." });
        for (var i = 1; i <= 4; i++)
        {
            await u.SendAsync(c, new { content = $"question {i} {Guid.NewGuid():N}" });
        }
        var marker = $"question 5 {Guid.NewGuid():N}";
        await u.SendAsync(c, new { content = marker });

        var sent = fx.Fake.ChatRequests.Single(r => r.LastUserText == marker);
        var messages = JsonDocument.Parse(sent.Body).RootElement.GetProperty("messages").EnumerateArray()
            .Select(m => (Role: m.GetProperty("role").GetString(), Text: m.GetProperty("content").ValueKind == JsonValueKind.String
                ? m.GetProperty("content").GetString()
                : string.Concat(m.GetProperty("content").EnumerateArray().Select(p => p.GetProperty("text").GetString()))))
            .ToList();
        // The system prompt, the newest ContextMessages earlier messages (questions 3 and 4 with their answers), the new question.
        Assert.Equal(["system", "user", "assistant", "user", "assistant", "user"], messages.Select(m => m.Role));
        Assert.Equal("Answer like a pirate.", messages[0].Text);
        Assert.StartsWith("question 3 ", messages[1].Text);
        Assert.StartsWith("question 4 ", messages[3].Text);
        Assert.Equal(marker, messages[^1].Text);
    }

    [Fact]
    public async Task WindowOfAnOlderBranchIsSentWithItsText()
    {
        // A branch from the first answer: its window is older than the newest ContextMessages messages, the ones
        // whose text PostgreSQL returns with the conversation's structure, so its text is read on its own.
        var u = await fx.CreateUserAsync();
        var c = await u.CreateConversationAsync(new { model = "openai/gpt-4o-mini" });
        var first = await u.SendAsync(c, new { content = $"question 1 {Guid.NewGuid():N}" });
        var a1 = first.GetProperty("assistantMessage");
        for (var i = 2; i <= 4; i++)
        {
            await u.SendAsync(c, new { content = $"question {i} {Guid.NewGuid():N}" });
        }
        var marker = $"branch question {Guid.NewGuid():N}";
        await u.SendAsync(c, new { content = marker, parentMessageId = a1.GetProperty("id").GetGuid() });

        var sent = fx.Fake.ChatRequests.Single(r => r.LastUserText == marker);
        var messages = JsonDocument.Parse(sent.Body).RootElement.GetProperty("messages").EnumerateArray()
            .Select(m => (Role: m.GetProperty("role").GetString(), Text: m.GetProperty("content").ValueKind == JsonValueKind.String
                ? m.GetProperty("content").GetString()
                : string.Concat(m.GetProperty("content").EnumerateArray().Select(p => p.GetProperty("text").GetString()))))
            .ToList();
        Assert.Equal(["user", "assistant", "user"], messages.Select(m => m.Role));
        Assert.Equal(first.GetProperty("userMessage").GetProperty("content").GetString(), messages[0].Text);
        Assert.Equal(a1.GetProperty("content").GetString(), messages[1].Text);
        Assert.False(string.IsNullOrEmpty(messages[1].Text));
        Assert.Equal(marker, messages[2].Text);
    }

    [Fact]
    public async Task Hole12_StreamsAndResumesAreUnbounded()
    {
        var u = await fx.CreateUserAsync();
        var c = await u.CreateConversationAsync(new { model = "openai/gpt-4o-mini" });
        fx.Fake.Enqueue(new FakeScenario { Text = Words.Long(2000), ChunkDelay = TimeSpan.FromMilliseconds(20) });
        using var first = await u.StreamAsync(c, new { content = "a long answer please" });
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        var events = first.ReadEventsAsync(Ct).GetAsyncEnumerator(Ct);
        Guid assistant = default;
        while (assistant == default && await events.MoveNextAsync())
        {
            if (events.Current.Type == "start")
            {
                assistant = events.Current.Json.GetProperty("messageId").GetGuid();
            }
        }
        var resumePath = $"api/conversations/{c}/messages/{assistant}/events";
        using var second = await u.Http.SendForEventsAsync(new HttpRequestMessage(HttpMethod.Get, resumePath), Ct);
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);

        // Both slots are taken: a third stream, resumed or new, is refused naming the limit.
        using var third = await u.Http.SendForEventsAsync(new HttpRequestMessage(HttpMethod.Get, resumePath), Ct);
        var problem = await ProblemAsync(third, HttpStatusCode.TooManyRequests, "rate_limited");
        Assert.Equal("streams", problem.GetProperty("limit").GetString());
        Assert.True(int.Parse(third.Headers.GetValues("Retry-After").Single()) >= 1);
        var other = await u.CreateConversationAsync();
        using var newStream = await u.StreamAsync(other, new { content = "hello" });
        Assert.Equal("streams", (await ProblemAsync(newStream, HttpStatusCode.TooManyRequests, "rate_limited")).GetProperty("limit").GetString());
        Assert.Empty((await u.GetConversationAsync(other))["messages"]!.AsArray());
        // Answers without a stream (JSON) are not streams.
        await u.SendAsync(other, new { content = "json is fine" });

        // Closing a stream frees its slot (once the server notices the closed connection).
        second.Dispose();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        HttpStatusCode status;
        do
        {
            using var retry = await u.Http.SendForEventsAsync(new HttpRequestMessage(HttpMethod.Get, resumePath), Ct);
            status = retry.StatusCode;
            if (status != HttpStatusCode.OK)
            {
                await Task.Delay(100, Ct);
            }
        }
        while (status != HttpStatusCode.OK && DateTime.UtcNow < deadline);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(HttpStatusCode.Accepted, (await u.Http.PostAsync($"api/conversations/{c}/messages/{assistant}/stop", null, Ct)).StatusCode);
        await events.DisposeAsync();
    }

    [Fact]
    public async Task Hole12_GatewayStreamsTakeStreamSlotsAndFreeThemWhenTheyEndOrTheClientLeaves()
    {
        var u = await fx.CreateUserAsync();
        var slow = new FakeScenario { Text = Words.Long(2000), ChunkDelay = TimeSpan.FromMilliseconds(20) };
        fx.Fake.Enqueue(slow);                                  // held open until the end of the test
        fx.Fake.Enqueue(FakeScenario.Answer("short and done")); // ends on its own
        fx.Fake.Enqueue(slow, times: 2);                        // the one the client leaves, and the one after it

        using var held = await OpenGatewayStreamAsync(u);
        Assert.Equal(HttpStatusCode.OK, held.StatusCode);
        using (var finished = await OpenGatewayStreamAsync(u))
        {
            Assert.Equal(HttpStatusCode.OK, finished.StatusCode);
            Assert.EndsWith("data: [DONE]\n\n", await finished.Content.ReadAsStringAsync(Ct));
        }
        // The finished stream's slot comes back: a new stream is accepted.
        using var left = await OpenOnceFreeAsync(u);

        // Both slots are held: the next /v1 stream is refused in OpenAI's shape before any provider call, and so is a chat stream.
        var calls = fx.Fake.ChatRequests.Count;
        using (var refused = await OpenGatewayStreamAsync(u))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
            Assert.Equal("application/json", refused.Content.Headers.ContentType?.MediaType);
            var error = JsonDocument.Parse(await refused.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("error");
            Assert.Equal("rate_limited", error.GetProperty("code").GetString());
            Assert.Contains("streams", error.GetProperty("message").GetString());
            Assert.True(int.Parse(refused.Headers.GetValues("Retry-After").Single()) >= 1);
        }
        var c = await u.CreateConversationAsync(new { model = "openai/gpt-4o-mini" });
        using (var chat = await u.StreamAsync(c, new { content = "one stream too many" }))
        {
            Assert.Equal("streams", (await ProblemAsync(chat, HttpStatusCode.TooManyRequests, "rate_limited")).GetProperty("limit").GetString());
        }
        Assert.Equal(calls, fx.Fake.ChatRequests.Count);

        // A client that leaves mid-stream frees its slot (once the server notices the closed connection).
        left.Dispose();
        using var after = await OpenOnceFreeAsync(u);
    }

    private static async Task<HttpResponseMessage> OpenGatewayStreamAsync(TestUser u)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions")
        {
            Content = JsonContent.Create(new { model = "openai/gpt-4o-mini", stream = true, messages = new[] { new { role = "user", content = "stream to me" } } }),
        };
        return await u.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct);
    }

    /// <summary>Opens a /v1 stream as soon as a slot is free (a freed slot is released once the server has finished the old response).</summary>
    private static async Task<HttpResponseMessage> OpenOnceFreeAsync(TestUser u)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var response = await OpenGatewayStreamAsync(u);
            if (response.StatusCode == HttpStatusCode.OK)
            {
                return response;
            }
            Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
            response.Dispose();
            Assert.True(DateTime.UtcNow < deadline, "the stream slot was never freed");
            await Task.Delay(100, Ct);
        }
    }

    [Fact]
    public async Task Hole12_SearchScansEveryMessageOfAUser()
    {
        var u = await fx.CreateUserAsync();
        var old = await u.CreateConversationAsync(new { title = "old one" });
        await u.SendAsync(old, new { content = "the word needle is here" });
        var recent = await u.CreateConversationAsync(new { title = "recent one" });
        await u.SendAsync(recent, new { content = "a needle again" });
        Assert.Equal([recent, old], Ids(await SearchAsync(u, "needle")));

        // Newer messages push the old conversation's text out of the searched window (SEARCH_MAX_MESSAGES).
        await u.SendAsync(recent, new { content = "nothing to see" });
        Assert.Equal([recent], Ids(await SearchAsync(u, "needle")));
        // Titles are still searched in every conversation.
        Assert.Equal([old], Ids(await SearchAsync(u, "old one")));
    }

    [Fact]
    public async Task FoldersAndSavedPromptsAreCountedPerAccount()
    {
        var u = await fx.CreateUserAsync();
        for (var i = 0; i < TightLimits.Folders; i++)
        {
            Assert.Equal(HttpStatusCode.Created, (await u.Http.PostAsJsonAsync("api/folders", new { name = $"f{i}" }, Ct)).StatusCode);
        }
        var full = await u.Http.PostAsJsonAsync("api/folders", new { name = "one more" }, Ct);
        Assert.Equal(HttpStatusCode.Conflict, full.StatusCode);
        var problem = await full.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal("folder_limit", problem.GetProperty("code").GetString());
        Assert.Equal("folders", problem.GetProperty("limit").GetString());

        for (var i = 0; i < TightLimits.SavedPrompts; i++)
        {
            Assert.Equal(HttpStatusCode.Created, (await u.Http.PostAsJsonAsync("api/prompts", new { title = $"p{i}", text = "t" }, Ct)).StatusCode);
        }
        var prompts = await u.Http.PostAsJsonAsync("api/prompts", new { title = "one more", text = "t" }, Ct);
        Assert.Equal(HttpStatusCode.Conflict, prompts.StatusCode);
        Assert.Equal("saved_prompts", (await prompts.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("limit").GetString());

        // The limits are per account: another account starts at zero.
        var other = await fx.CreateUserAsync();
        Assert.Equal(HttpStatusCode.Created, (await other.Http.PostAsJsonAsync("api/folders", new { name = "f0" }, Ct)).StatusCode);
    }

    private static async Task<JsonElement> SearchAsync(TestUser u, string q) =>
        await u.Http.GetFromJsonAsync<JsonElement>($"api/conversations?q={Uri.EscapeDataString(q)}", Ct);

    private static Guid[] Ids(JsonElement page) => page.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("id").GetGuid()).ToArray();
}

public sealed class SqliteResourceLimitTests(SqliteTightLimitsFixture fx) : ResourceLimitTests<SqliteTightLimitsFixture>(fx), IClassFixture<SqliteTightLimitsFixture>;

public sealed class PostgresResourceLimitTests(PostgresTightLimitsFixture fx) : ResourceLimitTests<PostgresTightLimitsFixture>(fx), IClassFixture<PostgresTightLimitsFixture>
{
    /// <summary>
    /// Expand-only schema: during a rolling upgrade the previous release writes messages and
    /// idempotency keys with the statements it knows (no Route, no storage bookkeeping). Its rows
    /// work with this release: the key replays in its conversation only, and the storage count follows.
    /// </summary>
    [Fact]
    public async Task PreviousReleaseWritesStillWorkOnTheNewSchema()
    {
        var ct = TestContext.Current.CancellationToken;
        var u = await Fx.CreateUserAsync();
        var c = await u.CreateConversationAsync();
        var (userMessage, assistant, key) = (Guid.CreateVersion7(), Guid.CreateVersion7(), Guid.NewGuid().ToString());
        const string content = "written by the previous release";
        var hash = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes($"{content}\0\0latest")));
        await using (var conn = await Fx.Database.OpenConnectionAsync(ct))
        {
            await using var insert = conn.CreateCommand();
            insert.CommandText = """
                INSERT INTO messages ("Id", "ConversationId", "UserId", "ParentMessageId", "Role", "Content", "Status", "Model", "CreatedAt", "UpdatedAt", "CompletedAt")
                VALUES (@u, @c, @owner, NULL, 'user', @content, 'complete', NULL, now() - interval '2 seconds', now(), now()),
                       (@a, @c, @owner, @u, 'assistant', @content, 'complete', 'demo/echo', now() - interval '1 second', now(), now());
                INSERT INTO idempotency_keys ("UserId", "Key", "RequestHash", "ConversationId", "UserMessageId", "AssistantMessageId", "CreatedAt")
                VALUES (@owner, @key, @hash, @c, @u, @a, now());
                """;
            insert.Parameters.AddWithValue("u", userMessage);
            insert.Parameters.AddWithValue("a", assistant);
            insert.Parameters.AddWithValue("c", c);
            insert.Parameters.AddWithValue("owner", u.Id);
            insert.Parameters.AddWithValue("content", content);
            insert.Parameters.AddWithValue("key", key);
            insert.Parameters.AddWithValue("hash", hash);
            await insert.ExecuteNonQueryAsync(ct);
        }
        Assert.Equal(2L * content.Length, await StoredCharsAsync(u.Id));

        var replay = await u.SendAsync(c, new { content }, key);
        Assert.Equal(assistant, replay.GetProperty("assistantMessage").GetProperty("id").GetGuid());
        var elsewhere = await u.CreateConversationAsync();
        using var request = new HttpRequestMessage(HttpMethod.Post, $"api/conversations/{elsewhere}/messages") { Content = JsonContent.Create(new { content }) };
        request.Headers.Add("Idempotency-Key", key);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, (await u.Http.SendAsync(request, ct)).StatusCode);

        Assert.Equal(HttpStatusCode.NoContent, (await u.Http.DeleteAsync($"api/conversations/{c}", ct)).StatusCode);
        Assert.Equal(0L, await StoredCharsAsync(u.Id));
    }

    /// <summary>
    /// The counter's triggers skip writes that change nothing (an answer's empty placeholder): a user whose
    /// first message is inserted empty has no counter row yet, and the later update of its text creates it.
    /// </summary>
    [Fact]
    public async Task AnEmptyInsertThenItsTextIsCounted()
    {
        var ct = TestContext.Current.CancellationToken;
        var u = await Fx.CreateUserAsync();
        var c = await u.CreateConversationAsync();
        var id = Guid.CreateVersion7();
        await using (var conn = await Fx.Database.OpenConnectionAsync(ct))
        {
            await using var insert = conn.CreateCommand();
            insert.CommandText = """
                INSERT INTO messages ("Id", "ConversationId", "UserId", "Role", "Content", "Status", "CreatedAt", "UpdatedAt")
                VALUES (@id, @c, @owner, 'assistant', '', 'streaming', now(), now());
                SELECT count(*) FROM user_storage WHERE "UserId" = @owner;
                """;
            insert.Parameters.AddWithValue("id", id);
            insert.Parameters.AddWithValue("c", c);
            insert.Parameters.AddWithValue("owner", u.Id);
            Assert.Equal(0L, (long)(await insert.ExecuteScalarAsync(ct))!);
            await using var update = conn.CreateCommand();
            update.CommandText = """UPDATE messages SET "Content" = 'four', "Status" = 'complete' WHERE "Id" = @id""";
            update.Parameters.AddWithValue("id", id);
            await update.ExecuteNonQueryAsync(ct);
        }
        Assert.Equal(4L, await StoredCharsAsync(u.Id));
        var sent = await u.SendAsync(c, new { content = "counted" });
        var answer = sent.GetProperty("assistantMessage").GetProperty("content").GetString()!;
        Assert.Equal(4L + "counted".Length + answer.Length, await StoredCharsAsync(u.Id));
        Assert.Equal(HttpStatusCode.NoContent, (await u.Http.DeleteAsync($"api/conversations/{c}", ct)).StatusCode);
        Assert.Equal(0L, await StoredCharsAsync(u.Id));
    }

    private async Task<long> StoredCharsAsync(Guid userId)
    {
        await using var conn = await Fx.Database.OpenConnectionAsync(TestContext.Current.CancellationToken);
        await using var select = conn.CreateCommand();
        select.CommandText = """SELECT "StoredChars" FROM user_storage WHERE "UserId" = @id""";
        select.Parameters.AddWithValue("id", userId);
        return (long)(await select.ExecuteScalarAsync(TestContext.Current.CancellationToken))!;
    }
}
