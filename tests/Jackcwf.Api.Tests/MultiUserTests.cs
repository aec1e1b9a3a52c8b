using System.ClientModel;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Jackcwf.Testing;
using OpenAI;
using OpenAI.Chat;

namespace Jackcwf.Api.Tests;

/// <summary>A service with tight limits, so each limit can be reached in a test.</summary>
public sealed class LimitedServiceFixture : ServiceFixture
{
    public const int UserPerMinute = 40;
    public const int KeyPerMinute = 6;
    public const int Concurrent = 2;

    protected override Task<IReadOnlyDictionary<string, string?>> DatabaseAsync() =>
        Task.FromResult<IReadOnlyDictionary<string, string?>>(new Dictionary<string, string?> { ["DATABASE_URL"] = null });

    public override Jackcwf.Api.Data.AppDbContext OpenDatabase() => SqliteServiceFixture.SqliteDatabase(Api);

    protected override IReadOnlyDictionary<string, string?> ExtraEnvironment => new Dictionary<string, string?>
    {
        ["RATE_LIMIT_USER_PER_MINUTE"] = UserPerMinute.ToString(),
        ["RATE_LIMIT_KEY_PER_MINUTE"] = KeyPerMinute.ToString(),
        ["MAX_CONCURRENT_GENERATIONS"] = Concurrent.ToString(),
        ["DEFAULT_MONTHLY_BUDGET_USD"] = "0.01",
        ["MAX_OUTPUT_TOKENS"] = "100",
    };
}

public sealed class MultiUserTests(LimitedServiceFixture fx) : IClassFixture<LimitedServiceFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<(Guid Id, string Key)> CreateKeyAsync(TestUser u, string name = "test")
    {
        var r = await u.Http.PostAsJsonAsync("api/keys", new { name }, Ct);
        Assert.Equal(HttpStatusCode.Created, r.StatusCode);
        var body = await r.Content.ReadFromJsonAsync<JsonElement>(Ct);
        return (body.GetProperty("id").GetGuid(), body.GetProperty("key").GetString()!);
    }

    private HttpClient KeyClient(string key)
    {
        var c = fx.Api.CreateClient();
        c.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return c;
    }

    [Fact]
    public async Task ApiKeyIsShownOnceStoredHashedAndAcceptedOnApiAndV1()
    {
        var u = await fx.CreateUserAsync();
        var (id, key) = await CreateKeyAsync(u, "laptop");
        Assert.StartsWith("jk-", key);
        Assert.True(key.Length >= 40);
        var list = await u.Http.GetFromJsonAsync<JsonElement>("api/keys", Ct);
        var item = list.GetProperty("items").EnumerateArray().Single();
        Assert.Equal(id, item.GetProperty("id").GetGuid());
        Assert.Equal(key[..11], item.GetProperty("prefix").GetString());
        Assert.DoesNotContain(key, list.ToString());

        var client = KeyClient(key);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("api/conversations", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("v1/models", Ct)).StatusCode);
        var me = await client.GetFromJsonAsync<JsonElement>("api/me", Ct);
        Assert.Equal(u.Id, me.GetProperty("id").GetGuid());

        // Last use is recorded off the request path, within seconds.
        JsonElement listed = default;
        for (var i = 0; i < 40; i++)
        {
            listed = (await u.Http.GetFromJsonAsync<JsonElement>("api/keys", Ct)).GetProperty("items")[0];
            if (listed.GetProperty("lastUsedAt").ValueKind == JsonValueKind.String)
            {
                break;
            }
            await Task.Delay(250, Ct);
        }
        Assert.Equal(JsonValueKind.String, listed.GetProperty("lastUsedAt").ValueKind);

        var wrong = KeyClient("jk-not-a-real-key");
        Assert.Equal(HttpStatusCode.Unauthorized, (await wrong.GetAsync("api/conversations", Ct)).StatusCode);
    }

    [Fact]
    public async Task ARevokedKeyIsRefusedOnTheNextRequestAndEndsItsOpenStream()
    {
        var u = await fx.CreateUserAsync();
        var (id, key) = await CreateKeyAsync(u);
        var client = KeyClient(key);
        var c = await u.CreateConversationAsync(new { model = "openai/gpt-4o-mini" });
        fx.Fake.Enqueue(new FakeScenario { Text = Words.Long(300), ChunkDelay = TimeSpan.FromMilliseconds(30), InputTokens = 1, OutputTokens = 1 });
        using var request = new HttpRequestMessage(HttpMethod.Post, $"api/conversations/{c}/messages") { Content = JsonContent.Create(new { content = "long" }) };
        using var response = await client.SendForEventsAsync(request, Ct);
        var deltas = 0;
        SseEvent? last = null;
        await foreach (var e in response.ReadEventsAsync(Ct))
        {
            last = e;
            if (e.Type == "delta" && ++deltas == 3)
            {
                Assert.Equal(HttpStatusCode.NoContent, (await u.Http.DeleteAsync($"api/keys/{id}", Ct)).StatusCode);
                Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("api/conversations", Ct)).StatusCode);
            }
        }
        Assert.NotNull(last);
        Assert.Equal("error", last!.Type);
        Assert.Equal("account_disabled", last.Json.GetProperty("code").GetString());
        Assert.True(deltas < 100, $"the stream went on for {deltas} deltas after the key was revoked");
        Assert.Empty((await u.Http.GetFromJsonAsync<JsonElement>("api/keys", Ct)).GetProperty("items").EnumerateArray());
    }

    [Fact]
    public async Task ADisabledUserIsRefusedEverywhereUntilEnabledAgain()
    {
        var u = await fx.CreateUserAsync();
        var (_, key) = await CreateKeyAsync(u);
        var c = await u.CreateConversationAsync(new { model = "openai/gpt-4o-mini" });
        fx.Fake.Enqueue(new FakeScenario { Text = Words.Long(300), ChunkDelay = TimeSpan.FromMilliseconds(30), InputTokens = 1, OutputTokens = 1 });
        using var response = await u.StreamAsync(c, new { content = "long" });
        SseEvent? last = null;
        var deltas = 0;
        await foreach (var e in response.ReadEventsAsync(Ct))
        {
            last = e;
            if (e.Type == "delta" && ++deltas == 3)
            {
                Assert.Equal(HttpStatusCode.NoContent, (await fx.Admin.Http.PostAsync($"api/admin/users/{u.Id}/disable", null, Ct)).StatusCode);
            }
        }
        Assert.Equal("error", last!.Type);
        Assert.Equal("account_disabled", last.Json.GetProperty("code").GetString());

        Assert.Equal(HttpStatusCode.Unauthorized, (await u.Http.GetAsync("api/conversations", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await KeyClient(key).GetAsync("v1/models", Ct)).StatusCode);
        var login = await fx.Api.CreateClient().PostAsJsonAsync("api/auth/login", new { email = u.Email, password = u.Password }, Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, login.StatusCode);
        var users = await fx.Admin.Http.GetFromJsonAsync<JsonElement>("api/admin/users", Ct);
        Assert.True(users.GetProperty("items").EnumerateArray().Single(x => x.GetProperty("id").GetGuid() == u.Id).GetProperty("disabled").GetBoolean());

        Assert.Equal(HttpStatusCode.NoContent, (await fx.Admin.Http.PostAsync($"api/admin/users/{u.Id}/enable", null, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await KeyClient(key).GetAsync("v1/models", Ct)).StatusCode);
        var again = await fx.Api.CreateClient().PostAsJsonAsync("api/auth/login", new { email = u.Email, password = u.Password }, Ct);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
    }

    [Fact]
    public async Task AdministratorEndpointsAreForAdministratorsOnly()
    {
        var u = await fx.CreateUserAsync();
        Assert.Equal(HttpStatusCode.Forbidden, (await u.Http.GetAsync("api/admin/users", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await u.Http.PostAsync($"api/admin/users/{fx.Admin.Id}/disable", null, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, (await fx.Admin.Http.PostAsync($"api/admin/users/{fx.Admin.Id}/disable", null, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await fx.Admin.Http.PostAsync($"api/admin/users/{Guid.NewGuid()}/disable", null, Ct)).StatusCode);
    }

    [Fact]
    public async Task KeyRateLimitRefusesExactlyAtTheThresholdWithoutCallingTheProvider()
    {
        var u = await fx.CreateUserAsync();
        var (_, key) = await CreateKeyAsync(u);
        var client = KeyClient(key);
        var calls = fx.Fake.ChatRequests.Count;
        for (var i = 0; i < LimitedServiceFixture.KeyPerMinute; i++)
        {
            var ok = await client.PostAsJsonAsync("v1/chat/completions", new { model = "openai/gpt-4o-mini", messages = new[] { new { role = "user", content = $"n{i}" } } }, Ct);
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }
        var refused = await client.PostAsJsonAsync("v1/chat/completions", new { model = "openai/gpt-4o-mini", messages = new[] { new { role = "user", content = "one too many" } } }, Ct);
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.True(int.Parse(refused.Headers.GetValues("Retry-After").Single()) is > 0 and <= 60);
        var error = await refused.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal("rate_limit_error", error.GetProperty("error").GetProperty("type").GetString());
        Assert.Contains("API key", error.GetProperty("error").GetProperty("message").GetString());
        Assert.Equal(calls + LimitedServiceFixture.KeyPerMinute, fx.Fake.ChatRequests.Count);
        // The same user with a session token is still within the user limit.
        Assert.Equal(HttpStatusCode.OK, (await u.Http.GetAsync("api/conversations", Ct)).StatusCode);
    }

    [Fact]
    public async Task KeyRateLimitCountsInvalidChatCompletionsAndRefusesThemOnceOver()
    {
        var u = await fx.CreateUserAsync();
        var (_, key) = await CreateKeyAsync(u);
        var client = KeyClient(key);
        var calls = fx.Fake.ChatRequests.Count;
        // Requests answered 400 or 404 count in the key's window like any other.
        for (var i = 0; i < LimitedServiceFixture.KeyPerMinute; i++)
        {
            var unknown = await client.PostAsJsonAsync("v1/chat/completions", new { model = "openai/no-such-model", messages = new[] { new { role = "user", content = "x" } } }, Ct);
            Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        }
        // Over the limit, an invalid body and a valid request alike get the 429, and the provider is never called.
        using var malformed = new StringContent("{not json", System.Text.Encoding.UTF8, "application/json");
        var invalid = await client.PostAsync("v1/chat/completions", malformed, Ct);
        Assert.Equal(HttpStatusCode.TooManyRequests, invalid.StatusCode);
        var valid = await client.PostAsJsonAsync("v1/chat/completions", new { model = "openai/gpt-4o-mini", messages = new[] { new { role = "user", content = "hi" } } }, Ct);
        Assert.Equal(HttpStatusCode.TooManyRequests, valid.StatusCode);
        var error = await valid.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal("rate_limit_error", error.GetProperty("error").GetProperty("type").GetString());
        Assert.Contains("API key", error.GetProperty("error").GetProperty("message").GetString());
        Assert.Equal(calls, fx.Fake.ChatRequests.Count);
    }

    [Fact]
    public async Task KeyRateLimitCountsChatMessagesWhoseBodyCannotBeRead()
    {
        var u = await fx.CreateUserAsync();
        var conversation = await u.CreateConversationAsync(new { model = "openai/gpt-4o-mini" });
        var (_, key) = await CreateKeyAsync(u);
        var client = KeyClient(key);
        var calls = fx.Fake.ChatRequests.Count;
        // A body that is not JSON never reaches the turn, which counts the route's requests; it still counts.
        for (var i = 0; i < LimitedServiceFixture.KeyPerMinute; i++)
        {
            using var broken = new StringContent("{not json", System.Text.Encoding.UTF8, "application/json");
            var invalid = await client.PostAsync($"api/conversations/{conversation}/messages", broken, Ct);
            Assert.Equal(HttpStatusCode.BadRequest, invalid.StatusCode);
            Assert.Equal("application/problem+json", invalid.Content.Headers.ContentType?.MediaType);
        }
        using var again = new StringContent("{not json", System.Text.Encoding.UTF8, "application/json");
        var refused = await client.PostAsync($"api/conversations/{conversation}/messages", again, Ct);
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.True(refused.Headers.Contains("Retry-After"));
        var problem = await refused.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal("key_rate", problem.GetProperty("limit").GetString());
        var valid = await client.PostAsJsonAsync($"api/conversations/{conversation}/messages", new { content = "hi" }, Ct);
        Assert.Equal(HttpStatusCode.TooManyRequests, valid.StatusCode);
        Assert.Equal(calls, fx.Fake.ChatRequests.Count);
    }

    [Fact]
    public async Task UserRateLimitRefusesExactlyAtTheThresholdWithAProblemNamingTheLimit()
    {
        var u = await fx.CreateUserAsync();
        // Creating the user used one request (GET /api/me).
        for (var i = 1; i < LimitedServiceFixture.UserPerMinute; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await u.Http.GetAsync("api/conversations", Ct)).StatusCode);
        }
        var refused = await u.Http.GetAsync("api/conversations", Ct);
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.True(refused.Headers.Contains("Retry-After"));
        var problem = await refused.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal("user_rate", problem.GetProperty("limit").GetString());
        Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task ConcurrentGenerationsAreCappedPerUserWithoutCallingTheProvider()
    {
        var u = await fx.CreateUserAsync();
        var c = await u.CreateConversationAsync(new { model = "openai/gpt-4o-mini" });
        fx.Fake.Enqueue(new FakeScenario { Text = Words.Long(100), ChunkDelay = TimeSpan.FromMilliseconds(40), InputTokens = 1, OutputTokens = 1 }, times: LimitedServiceFixture.Concurrent);
        var before = fx.Fake.ChatRequests.Count;
        var open = new List<HttpResponseMessage>();
        for (var i = 0; i < LimitedServiceFixture.Concurrent; i++)
        {
            open.Add(await u.StreamAsync(c, new { content = $"long {i}", parentMessageId = (Guid?)null }));
        }
        await fx.Fake.WaitForChatRequestsAsync(before + LimitedServiceFixture.Concurrent, TimeSpan.FromSeconds(10));
        var calls = fx.Fake.ChatRequests.Count;
        var refused = await u.Http.PostAsJsonAsync($"api/conversations/{c}/messages", new { content = "third" }, Ct);
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Equal("1", refused.Headers.GetValues("Retry-After").Single());
        Assert.Equal("concurrency", (await refused.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("limit").GetString());
        Assert.Equal(calls, fx.Fake.ChatRequests.Count);
        foreach (var r in open)
        {
            await r.ReadAllEventsAsync(Ct);
            r.Dispose();
        }
        // Slots are freed when the answers finish.
        var after = await u.SendAsync(c, new { content = "now there is room", model = "demo/echo" });
        Assert.Equal("complete", after.GetProperty("assistantMessage").GetProperty("status").GetString());
    }

    [Fact]
    public async Task MonthlyBudgetStopsPaidModelsButNotFreeOnes()
    {
        var u = await fx.CreateUserAsync();
        var c = await u.CreateConversationAsync(new { model = "openai/gpt-4o-mini" });
        // 100,000 input tokens at $0.15/M = $0.015: over the $0.01 budget in one answer.
        fx.Fake.Enqueue(new FakeScenario { Text = "pricey", InputTokens = 100_000, OutputTokens = 0 });
        await u.SendAsync(c, new { content = "spend" });
        var calls = fx.Fake.ChatRequests.Count;
        var refused = await u.Http.PostAsJsonAsync($"api/conversations/{c}/messages", new { content = "more" }, Ct);
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.True(int.Parse(refused.Headers.GetValues("Retry-After").Single()) > 0);
        var problem = await refused.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal("budget", problem.GetProperty("limit").GetString());
        Assert.Equal("budget_exceeded", problem.GetProperty("code").GetString());
        Assert.Equal(calls, fx.Fake.ChatRequests.Count);
        var free = await u.SendAsync(c, new { content = "free still works", model = "demo/echo" });
        Assert.Equal("free still works", free.GetProperty("assistantMessage").GetProperty("content").GetString());

        // An administrator raises this user's budget.
        var patch = await fx.Admin.Http.PatchAsJsonAsync($"api/admin/users/{u.Id}", new { monthlyBudgetUsd = 5.0 }, Ct);
        Assert.Equal(HttpStatusCode.OK, patch.StatusCode);
        fx.Fake.Enqueue(new FakeScenario { Text = "allowed again", InputTokens = 10, OutputTokens = 10 });
        var allowed = await u.SendAsync(c, new { content = "again" });
        Assert.Equal("allowed again", allowed.GetProperty("assistantMessage").GetProperty("content").GetString());
    }

    [Fact]
    public async Task UsageIsReportedPerUserAndModelAndOnlyAdministratorsSeeOthers()
    {
        var u = await fx.CreateUserAsync();
        var other = await fx.CreateUserAsync();
        var c = await u.CreateConversationAsync(new { model = "openai/gpt-4o-mini" });
        fx.Fake.Enqueue(new FakeScenario { Text = "a", InputTokens = 1000, OutputTokens = 500 });
        await u.SendAsync(c, new { content = "paid" });
        await u.SendAsync(c, new { content = "free", model = "demo/echo" });
        var usage = await u.Http.GetFromJsonAsync<JsonElement>("api/usage", Ct);
        Assert.Equal(2, usage.GetProperty("totals").GetProperty("requests").GetInt32());
        var mini = usage.GetProperty("byModel").EnumerateArray().Single(m => m.GetProperty("model").GetString() == "openai/gpt-4o-mini");
        Assert.Equal(1000, mini.GetProperty("inputTokens").GetInt64());
        Assert.Equal(0.00045m, mini.GetProperty("costUsd").GetDecimal());
        Assert.Single(usage.GetProperty("byDay").EnumerateArray());

        Assert.Equal(0, (await other.Http.GetFromJsonAsync<JsonElement>("api/usage", Ct)).GetProperty("totals").GetProperty("requests").GetInt32());
        Assert.Equal(HttpStatusCode.NotFound, (await other.Http.GetAsync($"api/usage?userId={u.Id}", Ct)).StatusCode);
        var asAdmin = await fx.Admin.Http.GetFromJsonAsync<JsonElement>($"api/usage?userId={u.Id}", Ct);
        Assert.Equal(2, asAdmin.GetProperty("totals").GetProperty("requests").GetInt32());
        var past = await u.Http.GetFromJsonAsync<JsonElement>("api/usage?from=2020-01-01&to=2020-01-31", Ct);
        Assert.Equal(0, past.GetProperty("totals").GetProperty("requests").GetInt32());
        Assert.Equal(HttpStatusCode.BadRequest, (await u.Http.GetAsync("api/usage?from=yesterday", Ct)).StatusCode);
    }

    [Fact]
    public async Task TheOfficialOpenAiSdkWorksUnchangedAgainstV1StreamedAndNot()
    {
        var u = await fx.CreateUserAsync();
        var (_, key) = await CreateKeyAsync(u, "sdk");
        var client = new OpenAIClient(new ApiKeyCredential(key), new OpenAIClientOptions { Endpoint = new Uri(fx.Api.BaseUrl, "v1") })
            .GetChatClient("anthropic/claude-haiku-4-5");

        fx.Fake.Enqueue(new FakeScenario { Text = "Plain answer.", InputTokens = 7, OutputTokens = 3 });
        ChatCompletion completion = await client.CompleteChatAsync([new SystemChatMessage("be nice"), new UserChatMessage("hello")], cancellationToken: Ct);
        Assert.Equal("Plain answer.", completion.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
        Assert.Equal(7, completion.Usage.InputTokenCount);

        fx.Fake.Enqueue(new FakeScenario { Text = "Streamed answer, word by word.", InputTokens = 5, OutputTokens = 6 });
        var text = "";
        ChatTokenUsage? usage = null;
        await foreach (var update in client.CompleteChatStreamingAsync([new UserChatMessage("stream please")], new ChatCompletionOptions(), Ct))
        {
            text += string.Concat(update.ContentUpdate.Select(p => p.Text));
            usage ??= update.Usage;
        }
        Assert.Equal("Streamed answer, word by word.", text);
        Assert.NotNull(usage);
        Assert.Equal(6, usage!.OutputTokenCount);

        var error = await Assert.ThrowsAsync<ClientResultException>(() =>
            new OpenAIClient(new ApiKeyCredential(key), new OpenAIClientOptions { Endpoint = new Uri(fx.Api.BaseUrl, "v1") })
                .GetChatClient("no/such-model").CompleteChatAsync([new UserChatMessage("x")], cancellationToken: Ct));
        Assert.Equal(404, error.Status);

        var models = await new OpenAIClient(new ApiKeyCredential(key), new OpenAIClientOptions { Endpoint = new Uri(fx.Api.BaseUrl, "v1") })
            .GetOpenAIModelClient().GetModelsAsync(Ct);
        Assert.Contains(models.Value, m => m.Id == "demo/echo");

        var report = await u.Http.GetFromJsonAsync<JsonElement>("api/usage", Ct);
        Assert.Equal(2, report.GetProperty("byModel").EnumerateArray().Single(m => m.GetProperty("model").GetString() == "anthropic/claude-haiku-4-5").GetProperty("requests").GetInt32());
    }

    [Fact]
    public async Task OutputTokenAndInputSizeLimitsAreEnforcedOnTheGateway()
    {
        var u = await fx.CreateUserAsync();
        var tooMany = await u.Http.PostAsJsonAsync("v1/chat/completions", new { model = "demo/echo", max_tokens = 1000, messages = new[] { new { role = "user", content = "x" } } }, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, tooMany.StatusCode);
        Assert.Equal("max_tokens", (await tooMany.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("error").GetProperty("param").GetString());
        var capped = await u.Http.PostAsJsonAsync("v1/chat/completions", new { model = "demo/echo", max_tokens = 3, messages = new[] { new { role = "user", content = "one two three four five" } } }, Ct);
        var body = await capped.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal("one two three ", body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("length", body.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
    }
}
