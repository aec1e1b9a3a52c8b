using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Jackcwf.Testing;

namespace Jackcwf.Api.Tests;

/// <summary>Every route of the Accounts, Models, Conversations and Messages contract, on one database.</summary>
public abstract class RouteTests<TFixture>(TFixture fx) where TFixture : ServiceFixture
{
    protected TFixture Fx { get; } = fx;
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task FirstAccountIsAdministratorAndLaterOnesAreNot()
    {
        var admin = await Fx.Admin.Http.GetFromJsonAsync<JsonElement>("api/me", Ct);
        Assert.True(admin.GetProperty("isAdmin").GetBoolean());
        Assert.Contains("admin", admin.GetProperty("roles").EnumerateArray().Select(r => r.GetString()));
        var other = await Fx.CreateUserAsync();
        var me = await other.Http.GetFromJsonAsync<JsonElement>("api/me", Ct);
        Assert.False(me.GetProperty("isAdmin").GetBoolean());
        Assert.Equal(other.Email, me.GetProperty("email").GetString());
    }

    [Fact]
    public async Task RefreshTokenGivesWorkingTokensAndInfoShowsTheUser()
    {
        var u = await Fx.CreateUserAsync();
        var anon = Fx.Api.CreateClient();
        var r = await anon.PostAsJsonAsync("api/auth/refresh", new { refreshToken = u.RefreshToken }, Ct);
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        var tokens = await r.Content.ReadFromJsonAsync<JsonElement>(Ct);
        anon.DefaultRequestHeaders.Authorization = new("Bearer", tokens.GetProperty("accessToken").GetString());
        var info = await anon.GetFromJsonAsync<JsonElement>("api/auth/manage/info", Ct);
        Assert.Equal(u.Email, info.GetProperty("email").GetString());
    }

    [Fact]
    public async Task WrongPasswordIsRefusedWithProblem()
    {
        var u = await Fx.CreateUserAsync();
        var r = await Fx.Api.CreateClient().PostAsJsonAsync("api/auth/login", new { email = u.Email, password = "Wrong-pass1" }, Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
        Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task CookieSessionWorksRequiresCsrfHeaderForChangesAndEndsOnLogout()
    {
        var u = await Fx.CreateUserAsync();
        var browser = Fx.Api.CreateClient();
        var login = await browser.PostAsJsonAsync("api/auth/login?useCookies=true", new { email = u.Email, password = u.Password }, Ct);
        Assert.Equal(HttpStatusCode.OK, login.StatusCode);
        var setCookie = string.Join(";", login.Headers.GetValues("Set-Cookie"));
        Assert.Contains("jackcwf.session=", setCookie);
        Assert.Contains("httponly", setCookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=lax", setCookie, StringComparison.OrdinalIgnoreCase);

        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync("api/me", Ct)).StatusCode);
        var forged = await browser.PostAsJsonAsync("api/conversations", new { title = "forged" }, Ct);
        Assert.Equal(HttpStatusCode.Forbidden, forged.StatusCode);
        Assert.Contains("csrf", await forged.Content.ReadAsStringAsync(Ct));

        using var ok = new HttpRequestMessage(HttpMethod.Post, "api/conversations") { Content = JsonContent.Create(new { title = "mine" }) };
        ok.Headers.Add("X-Requested-With", "XMLHttpRequest");
        Assert.Equal(HttpStatusCode.Created, (await browser.SendAsync(ok, Ct)).StatusCode);

        using var logout = new HttpRequestMessage(HttpMethod.Post, "api/auth/logout");
        logout.Headers.Add("X-Requested-With", "XMLHttpRequest");
        Assert.Equal(HttpStatusCode.NoContent, (await browser.SendAsync(logout, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await browser.GetAsync("api/me", Ct)).StatusCode);
        // Logout renews the security stamp: the account's other sessions and tokens ended too.
        Assert.Equal(HttpStatusCode.Unauthorized, (await u.Http.GetAsync("api/me", Ct)).StatusCode);
        var again = await (await Fx.Api.CreateClient().PostAsJsonAsync("api/auth/login", new { email = u.Email, password = u.Password }, Ct)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        using var fresh = Fx.Api.CreateClient();
        fresh.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", again.GetProperty("accessToken").GetString());
        // Only the forged-free request created a conversation.
        var list = await fresh.GetFromJsonAsync<JsonElement>("api/conversations", Ct);
        Assert.Equal(["mine"], list.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("title").GetString()));
    }

    [Fact]
    public async Task ModelsListsDemoAndConfiguredProvidersWithPrices()
    {
        var models = await Fx.Admin.Http.GetFromJsonAsync<JsonElement[]>("api/models", Ct);
        var ids = models!.Select(m => m.GetProperty("id").GetString()).ToList();
        Assert.Contains("demo/echo", ids);
        Assert.Contains("openai/gpt-4o-mini", ids);
        Assert.Contains("anthropic/claude-haiku-4-5", ids);
        var mini = models!.Single(m => m.GetProperty("id").GetString() == "openai/gpt-4o-mini");
        Assert.Equal("openai", mini.GetProperty("provider").GetString());
        Assert.Equal(0.15m, mini.GetProperty("inputPricePerMillionTokens").GetDecimal());
        Assert.Equal(0.60m, mini.GetProperty("outputPricePerMillionTokens").GetDecimal());
    }

    [Fact]
    public async Task ConversationCrudRoundTrips()
    {
        var u = await Fx.CreateUserAsync();
        var create = await u.Http.PostAsJsonAsync("api/conversations", new { title = "Plans", model = "demo/echo", systemPrompt = "Be brief." }, Ct);
        Assert.Equal(HttpStatusCode.Created, create.StatusCode);
        var created = await create.Content.ReadFromJsonAsync<JsonElement>(Ct);
        var id = created.GetProperty("id").GetGuid();
        Assert.Equal(7, id.Version);
        Assert.EndsWith($"/api/conversations/{id}", create.Headers.Location!.ToString());
        Assert.EndsWith("Z", created.GetProperty("createdAt").GetString());

        var patch = await u.Http.PatchAsJsonAsync($"api/conversations/{id}", new { title = "Renamed", systemPrompt = "Be thorough." }, Ct);
        Assert.Equal(HttpStatusCode.OK, patch.StatusCode);
        var got = await u.GetConversationAsync(id);
        Assert.Equal("Renamed", got["title"]!.GetValue<string>());
        Assert.Equal("Be thorough.", got["systemPrompt"]!.GetValue<string>());
        Assert.Equal("demo/echo", got["model"]!.GetValue<string>());
        Assert.Empty(got["messages"]!.AsArray());

        Assert.Equal(HttpStatusCode.NoContent, (await u.Http.DeleteAsync($"api/conversations/{id}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await u.Http.GetAsync($"api/conversations/{id}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await u.Http.DeleteAsync($"api/conversations/{id}", Ct)).StatusCode);
    }

    [Fact]
    public async Task ListPagesNewestFirstWithCursorsAndSearchesTitlesAndText()
    {
        var u = await Fx.CreateUserAsync();
        var ids = new List<Guid>();
        for (var i = 0; i < 5; i++)
        {
            ids.Add(await u.CreateConversationAsync(new { title = $"topic {i}" }));
        }
        await u.SendAsync(ids[1], new { content = "the zebra crossing is wide" });
        // Sending a message makes conversation 1 the most recently updated.
        var expected = new[] { ids[1], ids[4], ids[3], ids[2], ids[0] };

        var seen = new List<Guid>();
        string? cursor = null;
        var pages = 0;
        do
        {
            var page = await u.Http.GetFromJsonAsync<JsonElement>($"api/conversations?limit=2{(cursor is null ? "" : "&cursor=" + cursor)}", Ct);
            seen.AddRange(page.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("id").GetGuid()));
            cursor = page.GetProperty("nextCursor").GetString();
            pages++;
        }
        while (cursor is not null && pages < 10);
        Assert.Equal(expected, seen);
        Assert.Equal(3, pages);

        var byText = await u.Http.GetFromJsonAsync<JsonElement>("api/conversations?q=ZEBRA", Ct);
        Assert.Equal([ids[1]], byText.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("id").GetGuid()));
        var byTitle = await u.Http.GetFromJsonAsync<JsonElement>("api/conversations?q=topic%203", Ct);
        Assert.Equal([ids[3]], byTitle.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("id").GetGuid()));
        var wildcard = await u.Http.GetFromJsonAsync<JsonElement>("api/conversations?q=%25", Ct);
        Assert.Empty(wildcard.GetProperty("items").EnumerateArray());
    }

    [Fact]
    public async Task JsonMessageReturnsBothStoredMessagesWithTheExactEcho()
    {
        var u = await Fx.CreateUserAsync();
        var c = await u.CreateConversationAsync();
        const string text = "  Two  spaces,\nnew line\tand a tab  ";
        var result = await u.SendAsync(c, new { content = text });
        var user = result.GetProperty("userMessage");
        var assistant = result.GetProperty("assistantMessage");
        Assert.Equal(text, user.GetProperty("content").GetString());
        Assert.Equal(text, assistant.GetProperty("content").GetString());
        Assert.Equal("complete", assistant.GetProperty("status").GetString());
        Assert.Equal("demo/echo", assistant.GetProperty("model").GetString());
        Assert.True(assistant.GetProperty("usage").GetProperty("outputTokens").GetInt32() > 0);
        Assert.Equal(user.GetProperty("id").GetGuid(), assistant.GetProperty("parentMessageId").GetGuid());

        var stored = await u.GetConversationAsync(c);
        var messages = stored["messages"]!.AsArray();
        Assert.Equal(2, messages.Count);
        Assert.Equal(text, messages[1]!["content"]!.GetValue<string>());
        // The first message names the conversation.
        Assert.Equal("Two  spaces,", stored["title"]!.GetValue<string>());
    }

    [Fact]
    public async Task StreamSpeaksTheContractWireFormat()
    {
        var u = await Fx.CreateUserAsync();
        var c = await u.CreateConversationAsync();
        var text = Words.Long(40);
        using var response = await u.StreamAsync(c, new { content = text });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("no-cache", response.Headers.CacheControl?.ToString());
        var events = (await response.ReadAllEventsAsync(Ct)).Where(e => !e.IsCommentOnly).ToList();

        Assert.Equal("user", events[0].Type);
        Assert.Equal(text, events[0].Json.GetProperty("content").GetString());
        Assert.Equal("start", events[1].Type);
        var assistantId = events[1].Json.GetProperty("messageId").GetGuid();
        var deltas = events.Where(e => e.Type == "delta").ToList();
        Assert.True(deltas.Count > 10);
        Assert.All(deltas, d => Assert.False(string.IsNullOrEmpty(d.Id)));
        Assert.All(deltas, d => Assert.StartsWith("data: {\"text\":", d.Raw.Split('\n').Single(l => l.StartsWith("data:"))));
        Assert.Equal(text, string.Concat(deltas.Select(d => d.Json.GetProperty("text").GetString())));
        var done = events[^1];
        Assert.Equal("done", done.Type);
        Assert.Equal(assistantId, done.Json.GetProperty("id").GetGuid());
        Assert.Equal("complete", done.Json.GetProperty("status").GetString());
        Assert.Equal(text, done.Json.GetProperty("content").GetString());
        Assert.True(done.Json.GetProperty("usage").GetProperty("inputTokens").GetInt32() > 0);
        Assert.Equal(JsonValueKind.Number, done.Json.GetProperty("costUsd").ValueKind);
        Assert.Equal(events.Count, events.Select(e => e.Type).Count(t => t is "user" or "start" or "delta" or "done"));

        var stored = await u.WaitForMessageAsync(c, assistantId, m => m["status"]!.GetValue<string>() == "complete");
        Assert.Equal(text, stored["content"]!.GetValue<string>());
    }

    [Fact]
    public async Task KeepAliveCommentsFlowDuringASlowFirstToken()
    {
        var u = await Fx.CreateUserAsync();
        var c = await u.CreateConversationAsync(new { model = "openai/gpt-4o-mini" });
        Fx.Fake.Enqueue(new FakeScenario { Text = "finally here", FirstTokenDelay = TimeSpan.FromSeconds(1.5) });
        using var response = await u.StreamAsync(c, new { content = "slow please" });
        var events = await response.ReadAllEventsAsync(Ct);
        var firstDelta = events.ToList().FindIndex(e => e.Type == "delta");
        Assert.Contains(events.Take(firstDelta), e => e.IsCommentOnly && e.Comments.Any(c => c.Trim() == "keep-alive"));
        Assert.Contains(": keep-alive\n", string.Concat(events.Select(e => e.Raw + "\n")));
        Assert.Equal("finally here", string.Concat(events.Where(e => e.Type == "delta").Select(e => e.Json.GetProperty("text").GetString())));
    }

    [Fact]
    public async Task ResumeAfterLastEventIdGivesExactlyTheMissingText()
    {
        var u = await Fx.CreateUserAsync();
        var c = await u.CreateConversationAsync();
        var text = Words.Long(150);
        string received = "";
        string? lastId = null;
        Guid assistantId = default;
        using (var response = await u.StreamAsync(c, new { content = text }))
        {
            await foreach (var e in response.ReadEventsAsync(Ct))
            {
                if (e.Type == "start")
                {
                    assistantId = e.Json.GetProperty("messageId").GetGuid();
                }
                if (e.Type == "delta")
                {
                    received += e.Json.GetProperty("text").GetString();
                    lastId = e.Id;
                    if (received.Length > 40)
                    {
                        break; // the connection drops here
                    }
                }
            }
        }
        Assert.NotNull(lastId);

        using var resume = new HttpRequestMessage(HttpMethod.Get, $"api/conversations/{c}/messages/{assistantId}/events");
        resume.Headers.Add("Last-Event-ID", lastId);
        using var resumed = await u.Http.SendForEventsAsync(resume, Ct);
        Assert.Equal(HttpStatusCode.OK, resumed.StatusCode);
        var rest = (await resumed.ReadAllEventsAsync(Ct)).Where(e => !e.IsCommentOnly).ToList();
        Assert.DoesNotContain(rest, e => e.Type is "user" or "start");
        var tail = string.Concat(rest.Where(e => e.Type == "delta").Select(e => e.Json.GetProperty("text").GetString()));
        Assert.Equal(text, received + tail);
        Assert.Equal("done", rest[^1].Type);

        // After completion the same resume replays the same remainder.
        using var again = new HttpRequestMessage(HttpMethod.Get, $"api/conversations/{c}/messages/{assistantId}/events");
        again.Headers.Add("Last-Event-ID", lastId);
        using var replay = await u.Http.SendForEventsAsync(again, Ct);
        var replayed = (await replay.ReadAllEventsAsync(Ct)).Where(e => e.Type == "delta").Select(e => e.Json.GetProperty("text").GetString());
        Assert.Equal(text, received + string.Concat(replayed));

        // No Last-Event-ID: the whole answer.
        using var full = await u.Http.SendForEventsAsync(new HttpRequestMessage(HttpMethod.Get, $"api/conversations/{c}/messages/{assistantId}/events"), Ct);
        Assert.Equal(text, string.Concat((await full.ReadAllEventsAsync(Ct)).Where(e => e.Type == "delta").Select(e => e.Json.GetProperty("text").GetString())));
    }

    [Fact]
    public async Task SameIdempotencyKeyCreatesOneMessageAndOneProviderCall()
    {
        var u = await Fx.CreateUserAsync();
        var c = await u.CreateConversationAsync(new { model = "openai/gpt-4o-mini" });
        var key = Guid.NewGuid().ToString();
        var before = Fx.Fake.ChatRequests.Count;
        var first = await u.SendAsync(c, new { content = "only once" }, key);
        var second = await u.SendAsync(c, new { content = "only once" }, key);
        Assert.Equal(first.GetProperty("assistantMessage").GetProperty("id").GetGuid(), second.GetProperty("assistantMessage").GetProperty("id").GetGuid());
        Assert.Equal(first.GetProperty("userMessage").GetProperty("id").GetGuid(), second.GetProperty("userMessage").GetProperty("id").GetGuid());
        Assert.Equal("only once", second.GetProperty("assistantMessage").GetProperty("content").GetString());
        Assert.Equal(before + 1, Fx.Fake.ChatRequests.Count);

        // The same key streamed replays the stored answer.
        using var streamed = await u.StreamAsync(c, new { content = "only once" }, key);
        var events = await streamed.ReadAllEventsAsync(Ct);
        Assert.Equal(first.GetProperty("assistantMessage").GetProperty("id").GetGuid(), events.Single(e => e.Type == "start").Json.GetProperty("messageId").GetGuid());
        Assert.Equal(before + 1, Fx.Fake.ChatRequests.Count);

        using var different = new HttpRequestMessage(HttpMethod.Post, $"api/conversations/{c}/messages") { Content = JsonContent.Create(new { content = "something else" }) };
        different.Headers.Add("Idempotency-Key", key);
        var r = await u.Http.SendAsync(different, Ct);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, r.StatusCode);
        Assert.Contains("idempotency_key_reused", await r.Content.ReadAsStringAsync(Ct));
        Assert.Equal(2, (await u.GetConversationAsync(c))["messages"]!.AsArray().Count);
    }

    [Fact]
    public async Task ConcurrentRetriesWithOneKeyStoreOneMessage()
    {
        var u = await Fx.CreateUserAsync();
        var c = await u.CreateConversationAsync();
        var key = Guid.NewGuid().ToString();
        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => u.SendAsync(c, new { content = "racing" }, key)));
        Assert.Single(results.Select(r => r.GetProperty("assistantMessage").GetProperty("id").GetGuid()).Distinct());
        Assert.All(results, r => Assert.Equal("racing", r.GetProperty("assistantMessage").GetProperty("content").GetString()));
        Assert.Equal(2, (await u.GetConversationAsync(c))["messages"]!.AsArray().Count);
    }

    [Fact]
    public async Task AJsonAnswerWhoseRowIsGoneAtItsFinalWriteIsNotASuccess()
    {
        // The turn's write of a JSON answer commits without a WAL flush of its own (the final write's flushes it);
        // when its rows are gone by the final write (here the conversation deleted; also a crash of PostgreSQL
        // that lost them), the answer is not reported as stored.
        var u = await Fx.CreateUserAsync();
        var c = await u.CreateConversationAsync(new { model = "openai/gpt-4o-mini" });
        Fx.Fake.Enqueue(new FakeScenario { Text = Words.Long(200), ChunkDelay = TimeSpan.FromMilliseconds(20) });
        var answer = u.Http.PostAsJsonAsync($"api/conversations/{c}/messages", new { content = "tell me a long story" }, Ct);
        while ((await u.GetConversationAsync(c))["messages"]!.AsArray().Count < 2)
        {
            await Task.Delay(20, Ct);
        }
        Assert.Equal(HttpStatusCode.NoContent, (await u.Http.DeleteAsync($"api/conversations/{c}", Ct)).StatusCode);
        using var r = await answer;
        Assert.Equal(HttpStatusCode.ServiceUnavailable, r.StatusCode);
        Assert.Equal("answer_not_stored", (await r.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("code").GetString());
    }

    [Fact]
    public async Task StopKeepsThePartialTextMarkedStopped()
    {
        var u = await Fx.CreateUserAsync();
        var c = await u.CreateConversationAsync(new { model = "openai/gpt-4o-mini" });
        var text = Words.Long(200);
        Fx.Fake.Enqueue(new FakeScenario { Text = text, ChunkDelay = TimeSpan.FromMilliseconds(20) });
        using var response = await u.StreamAsync(c, new { content = "tell me a long story" });
        Guid assistantId = default;
        var received = "";
        SseEvent? final = null;
        var stopped = false;
        await foreach (var e in response.ReadEventsAsync(Ct))
        {
            if (e.Type == "start")
            {
                assistantId = e.Json.GetProperty("messageId").GetGuid();
            }
            else if (e.Type == "delta")
            {
                received += e.Json.GetProperty("text").GetString();
                if (!stopped && received.Length > 30)
                {
                    stopped = true;
                    var stop = await u.Http.PostAsync($"api/conversations/{c}/messages/{assistantId}/stop", null, Ct);
                    Assert.Equal(HttpStatusCode.Accepted, stop.StatusCode);
                }
            }
            else if (e.Type is "done" or "error")
            {
                final = e;
            }
        }
        Assert.NotNull(final);
        Assert.Equal("done", final!.Type);
        Assert.Equal("stopped", final.Json.GetProperty("status").GetString());
        var kept = final.Json.GetProperty("content").GetString()!;
        Assert.Equal(received, kept);
        Assert.StartsWith(kept, text);
        Assert.True(kept.Length < text.Length);

        var stored = await u.WaitForMessageAsync(c, assistantId, m => m["status"]!.GetValue<string>() != "streaming");
        Assert.Equal("stopped", stored["status"]!.GetValue<string>());
        Assert.Equal(kept, stored["content"]!.GetValue<string>());
        var again = await u.Http.PostAsync($"api/conversations/{c}/messages/{assistantId}/stop", null, Ct);
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
    }

    [Fact]
    public async Task EditAndRegenerateCreateSiblingBranches()
    {
        var u = await Fx.CreateUserAsync();
        var c = await u.CreateConversationAsync();
        var first = await u.SendAsync(c, new { content = "first question" });
        var a1 = first.GetProperty("assistantMessage").GetProperty("id").GetGuid();
        var u1 = first.GetProperty("userMessage").GetProperty("id").GetGuid();
        var second = await u.SendAsync(c, new { content = "second question" });
        var u2 = second.GetProperty("userMessage").GetProperty("id").GetGuid();
        Assert.Equal(a1, second.GetProperty("userMessage").GetProperty("parentMessageId").GetGuid());

        // Edit the second question: a new user message under the same parent.
        var edited = await u.SendAsync(c, new { content = "second question, edited", parentMessageId = a1 });
        Assert.Equal(a1, edited.GetProperty("userMessage").GetProperty("parentMessageId").GetGuid());
        Assert.NotEqual(u2, edited.GetProperty("userMessage").GetProperty("id").GetGuid());

        // Regenerate the first answer: a new assistant message under the first question.
        var regenerated = await u.SendAsync(c, new { parentMessageId = u1 });
        Assert.Equal(u1, regenerated.GetProperty("assistantMessage").GetProperty("parentMessageId").GetGuid());
        Assert.Equal("first question", regenerated.GetProperty("assistantMessage").GetProperty("content").GetString());

        // Edit the very first message: a new root.
        var root = await u.SendAsync(c, new { content = "a new beginning", parentMessageId = (Guid?)null });
        Assert.Equal(JsonValueKind.Null, root.GetProperty("userMessage").GetProperty("parentMessageId").ValueKind);

        var all = (await u.GetConversationAsync(c))["messages"]!.AsArray().Select(m => m!.AsObject()).ToList();
        Assert.Equal(9, all.Count);
        Assert.Equal(2, all.Count(m => m["parentMessageId"]?.GetValue<Guid?>() == a1));
        Assert.Equal(2, all.Count(m => m["parentMessageId"]?.GetValue<Guid?>() == u1));
        Assert.Equal(2, all.Count(m => m["parentMessageId"] is null));
        // Compared as instants: the JSON text drops trailing zeros of the fraction, so its string order is not time order.
        Assert.True(all.Zip(all.Skip(1)).All(p => p.First["createdAt"]!.GetValue<DateTime>() <= p.Second["createdAt"]!.GetValue<DateTime>()));

        // Without a parent, a message continues the most recent branch (after the new root's answer).
        var next = await u.SendAsync(c, new { content = "continue" });
        Assert.Equal(root.GetProperty("assistantMessage").GetProperty("id").GetGuid(), next.GetProperty("userMessage").GetProperty("parentMessageId").GetGuid());
    }

    [Fact]
    public async Task ExportsJsonAndMarkdownDownloads()
    {
        var u = await Fx.CreateUserAsync();
        var c = await u.CreateConversationAsync(new { title = "Trip notes" });
        await u.SendAsync(c, new { content = "pack **boots**" });
        var json = await u.Http.GetAsync($"api/conversations/{c}/export?format=json", Ct);
        Assert.Equal(HttpStatusCode.OK, json.StatusCode);
        Assert.Equal("attachment", json.Content.Headers.ContentDisposition?.DispositionType);
        Assert.Equal("Trip-notes.json", json.Content.Headers.ContentDisposition?.FileNameStar ?? json.Content.Headers.ContentDisposition?.FileName);
        var doc = await json.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal(2, doc.GetProperty("conversation").GetProperty("messages").GetArrayLength());

        var md = await u.Http.GetAsync($"api/conversations/{c}/export?format=markdown", Ct);
        Assert.Equal("text/markdown", md.Content.Headers.ContentType?.MediaType);
        var text = await md.Content.ReadAsStringAsync(Ct);
        Assert.StartsWith("# Trip notes", text);
        Assert.Contains("## User", text);
        Assert.Contains("## Assistant (demo/echo)", text);
        Assert.Contains("pack **boots**", text);

        Assert.Equal(HttpStatusCode.BadRequest, (await u.Http.GetAsync($"api/conversations/{c}/export?format=pdf", Ct)).StatusCode);
    }

    [Fact]
    public async Task AnotherUsersIdsAnswerNotFoundAndAnonymousAnswersUnauthorized()
    {
        var owner = await Fx.CreateUserAsync();
        var intruder = await Fx.CreateUserAsync();
        var anon = Fx.Api.CreateClient();
        var c = await owner.CreateConversationAsync(new { title = "private" });
        var sent = await owner.SendAsync(c, new { content = "secret" });
        var a = sent.GetProperty("assistantMessage").GetProperty("id").GetGuid();

        var routes = new (HttpMethod Method, string Path, object? Body)[]
        {
            (HttpMethod.Get, $"api/conversations/{c}", null),
            (HttpMethod.Patch, $"api/conversations/{c}", new { title = "stolen" }),
            (HttpMethod.Delete, $"api/conversations/{c}", null),
            (HttpMethod.Get, $"api/conversations/{c}/export?format=json", null),
            (HttpMethod.Post, $"api/conversations/{c}/messages", new { content = "hi" }),
            (HttpMethod.Get, $"api/conversations/{c}/messages/{a}/events", null),
            (HttpMethod.Post, $"api/conversations/{c}/messages/{a}/stop", null),
        };
        foreach (var (method, path, body) in routes)
        {
            using var asIntruder = new HttpRequestMessage(method, path) { Content = body is null ? null : JsonContent.Create(body) };
            Assert.Equal(HttpStatusCode.NotFound, (await intruder.Http.SendAsync(asIntruder, Ct)).StatusCode);
            using var asAnon = new HttpRequestMessage(method, path) { Content = body is null ? null : JsonContent.Create(body) };
            Assert.Equal(HttpStatusCode.Unauthorized, (await anon.SendAsync(asAnon, Ct)).StatusCode);
        }
        var key = await (await owner.Http.PostAsJsonAsync("api/keys", new { name = "mine" }, Ct)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        var keyId = key.GetProperty("id").GetGuid();
        Assert.Equal(HttpStatusCode.NotFound, (await intruder.Http.DeleteAsync($"api/keys/{keyId}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anon.DeleteAsync($"api/keys/{keyId}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await intruder.Http.GetAsync($"api/usage?userId={owner.Id}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anon.GetAsync($"api/usage?userId={owner.Id}", Ct)).StatusCode);
        Assert.Single((await owner.Http.GetFromJsonAsync<JsonElement>("api/keys", Ct)).GetProperty("items").EnumerateArray());

        var after = await owner.GetConversationAsync(c);
        Assert.Equal("private", after["title"]!.GetValue<string>());
        Assert.Equal(2, after["messages"]!.AsArray().Count);
        Assert.Empty((await intruder.Http.GetFromJsonAsync<JsonElement>("api/conversations", Ct)).GetProperty("items").EnumerateArray());
    }

    [Fact]
    public async Task OpenApiDocumentAndReferencePageAreServed()
    {
        var doc = await Fx.Api.CreateClient().GetFromJsonAsync<JsonElement>("openapi/v1.json", Ct);
        var paths = doc.GetProperty("paths").EnumerateObject().Select(p => p.Name).ToList();
        Assert.Contains("/api/conversations/{id}/messages", paths);
        Assert.Contains("/api/auth/login", paths);
        Assert.Contains("/v1/chat/completions", paths);
        var page = await Fx.Api.CreateClient().GetAsync("scalar", Ct);
        if (page.StatusCode == HttpStatusCode.Found)
        {
            page = await Fx.Api.CreateClient().GetAsync(page.Headers.Location, Ct);
        }
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task ResponsesCarrySecurityHeadersAndAStrictContentSecurityPolicy()
    {
        var r = await Fx.Api.CreateClient().GetAsync("/", Ct);
        Assert.Equal("nosniff", r.Headers.GetValues("X-Content-Type-Options").Single());
        Assert.Equal("DENY", r.Headers.GetValues("X-Frame-Options").Single());
        Assert.Equal("no-referrer", r.Headers.GetValues("Referrer-Policy").Single());
        var csp = r.Headers.GetValues("Content-Security-Policy").Single();
        Assert.Contains("script-src 'self'", csp);
        Assert.Contains("object-src 'none'", csp);
        Assert.Contains("frame-ancestors 'none'", csp);
        Assert.DoesNotContain("unsafe-inline", csp);
        Assert.False(r.Headers.Contains("Server"));
    }

    [Fact]
    public async Task UnknownModelIsRefusedNamingModelAndStoresNothing()
    {
        var u = await Fx.CreateUserAsync();
        var c = await u.CreateConversationAsync();
        var r = await u.Http.PostAsJsonAsync($"api/conversations/{c}/messages", new { content = "hi", model = "nope/nothing" }, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        var problem = await r.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.True(problem.GetProperty("errors").TryGetProperty("model", out _));
        Assert.Empty((await u.GetConversationAsync(c))["messages"]!.AsArray());
        var create = await u.Http.PostAsJsonAsync("api/conversations", new { model = "nope/nothing" }, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, create.StatusCode);
    }
}

public sealed class SqliteRouteTests(SqliteServiceFixture fx) : RouteTests<SqliteServiceFixture>(fx), IClassFixture<SqliteServiceFixture>;

public sealed class PostgresRouteTests(PostgresServiceFixture fx) : RouteTests<PostgresServiceFixture>(fx), IClassFixture<PostgresServiceFixture>;
