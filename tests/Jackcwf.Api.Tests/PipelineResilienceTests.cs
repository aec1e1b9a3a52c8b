using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Jackcwf.Testing;

namespace Jackcwf.Api.Tests;

/// <summary>
/// The service with retries, a fallback for gpt-4o-mini, short timeouts, a circuit breaker that a
/// test can open, and the exact response cache, against the fake LLM server through the official SDKs.
/// </summary>
public sealed class ResilienceServiceFixture : ServiceFixture
{
    public const int CacheTtlSeconds = 4;
    /// <summary>Failures (attempts) in the window that open a circuit; every one of them must fail.</summary>
    public const int CircuitThroughput = 10;

    protected override Task<IReadOnlyDictionary<string, string?>> DatabaseAsync() =>
        Task.FromResult<IReadOnlyDictionary<string, string?>>(new Dictionary<string, string?> { ["DATABASE_URL"] = null });

    protected override IReadOnlyDictionary<string, string?> ExtraEnvironment => new Dictionary<string, string?>
    {
        ["PROVIDER_MAX_RETRIES"] = "2",
        ["Resilience__RetryBaseDelayMs"] = "10",
        ["PROVIDER_IDLE_TIMEOUT_SECONDS"] = "1",
        ["MODEL_FALLBACKS"] = "openai/gpt-4o-mini=anthropic/claude-haiku-4-5",
        // The OpenAI-compatible local server on the same fake, at another endpoint (its own circuit).
        ["OLLAMA_BASE_URL"] = Fake.BaseUrl.ToString(),
        ["OLLAMA_MODELS"] = "llama3.2",
        ["CIRCUIT_BREAKER_FAILURE_RATIO"] = "1",
        ["CIRCUIT_BREAKER_MINIMUM_THROUGHPUT"] = CircuitThroughput.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["CIRCUIT_BREAKER_BREAK_SECONDS"] = "2",
        ["RESPONSE_CACHE"] = "exact",
        ["RESPONSE_CACHE_TTL_SECONDS"] = CacheTtlSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}

public sealed class PipelineResilienceTests(ResilienceServiceFixture fx) : IClassFixture<ResilienceServiceFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static object Completion(string model, string prompt, bool stream = false) =>
        new { model, stream, messages = new[] { new { role = "user", content = prompt } } };

    private static async Task<(HttpResponseMessage Response, JsonElement Body)> PostAsync(TestUser u, object body, string? cacheControl = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = JsonContent.Create(body) };
        if (cacheControl is not null)
        {
            request.Headers.TryAddWithoutValidation("Cache-Control", cacheControl);
        }
        var response = await u.Http.SendAsync(request, Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        return (response, text.StartsWith('{') ? JsonDocument.Parse(text).RootElement.Clone() : default);
    }

    private static string XCache(HttpResponseMessage r) => r.Headers.TryGetValues("X-Cache", out var v) ? v.Single() : "(none)";

    [Fact]
    public async Task RateLimitWithRetryAfterThenSuccessGivesOneAnswerFromTwoUpstreamCalls()
    {
        var u = await fx.CreateUserAsync();
        var before = fx.Fake.ChatRequests.Count;
        fx.Fake.Enqueue(FakeScenario.Error(429) with { RetryAfter = TimeSpan.FromMilliseconds(300) });
        var prompt = "retry me " + Guid.NewGuid();
        var (response, body) = await PostAsync(u, Completion("openai/gpt-4o-mini", prompt));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(prompt, body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("openai/gpt-4o-mini", body.GetProperty("model").GetString());
        Assert.Equal(2, fx.Fake.ChatRequests.Count - before);
    }

    [Fact]
    public async Task ServerErrorBeforeTheFirstTokenIsAnsweredByTheFallbackModelAndRecorded()
    {
        var u = await fx.CreateUserAsync();
        var c = await u.CreateConversationAsync(new { model = "openai/gpt-4o-mini" });
        fx.Fake.Enqueue(FakeScenario.Error(500), times: 3); // the first attempt and both retries
        fx.Fake.Enqueue(new FakeScenario { Text = "Fallback here.", InputTokens = 1000, OutputTokens = 1000 });
        var sent = await u.SendAsync(c, new { content = "please answer " + Guid.NewGuid() });
        var answer = sent.GetProperty("assistantMessage");
        Assert.Equal("complete", answer.GetProperty("status").GetString());
        Assert.Equal("Fallback here.", answer.GetProperty("content").GetString());
        Assert.Equal("anthropic/claude-haiku-4-5", answer.GetProperty("model").GetString());
        Assert.Equal("openai/gpt-4o-mini", answer.GetProperty("requestedModel").GetString());
        Assert.Equal(FakeLlmProvider.Anthropic, fx.Fake.ChatRequests[^1].Provider);
        // The answering model's prices (claude-haiku-4-5: $1 in, $5 out per million tokens).
        Assert.Equal(0.006m, answer.GetProperty("costUsd").GetDecimal());
        var stored = await u.WaitForMessageAsync(c, answer.GetProperty("id").GetGuid(), m => m["requestedModel"] is not null);
        Assert.Equal("anthropic/claude-haiku-4-5", stored["model"]!.GetValue<string>());

        fx.Fake.Enqueue(FakeScenario.Error(503), times: 3);
        var (response, body) = await PostAsync(u, Completion("openai/gpt-4o-mini", "gateway fallback " + Guid.NewGuid()));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("anthropic/claude-haiku-4-5", body.GetProperty("model").GetString());
    }

    [Fact]
    public async Task FailureAfterTheFirstTokenIsNotRetriedAndKeepsTheText()
    {
        var u = await fx.CreateUserAsync();
        var c = await u.CreateConversationAsync(new { model = "openai/gpt-4o-mini" });
        var before = fx.Fake.ChatRequests.Count;
        fx.Fake.Enqueue(new FakeScenario { Text = Words.Long(20), FailAfterChunks = 3 });
        using var stream = await u.StreamAsync(c, new { content = "break " + Guid.NewGuid() });
        var events = await stream.ReadAllEventsAsync(Ct);
        var received = string.Concat(events.Where(e => e.Type == "delta").Select(e => e.Json.GetProperty("text").GetString()));
        Assert.StartsWith("w0 w1", received);
        var error = events[^1];
        Assert.Equal("error", error.Type);
        Assert.Equal(received, error.Json.GetProperty("content").GetString());
        Assert.Equal(1, fx.Fake.ChatRequests.Count - before);
    }

    [Fact]
    public async Task CircuitOpensAfterTheThresholdFailsFastWithoutUpstreamCallsAndClosesAfterASuccess()
    {
        var u = await fx.CreateUserAsync();
        var model = "ollama/llama3.2";
        var before = fx.Fake.ChatRequests.Count;
        fx.Fake.Enqueue(FakeScenario.Error(503), times: ResilienceServiceFixture.CircuitThroughput);
        HttpResponseMessage response;
        JsonElement body;
        do
        {
            (response, body) = await PostAsync(u, Completion(model, "outage " + Guid.NewGuid()));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        }
        while (fx.Fake.ChatRequests.Count - before < ResilienceServiceFixture.CircuitThroughput);
        Assert.Equal(ResilienceServiceFixture.CircuitThroughput, fx.Fake.ChatRequests.Count - before);

        // Open: refused at once with Retry-After, and the provider is not called.
        (response, body) = await PostAsync(u, Completion(model, "while open " + Guid.NewGuid()));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("provider_unavailable", body.GetProperty("error").GetProperty("code").GetString());
        Assert.NotNull(response.Headers.RetryAfter);
        Assert.Equal(ResilienceServiceFixture.CircuitThroughput, fx.Fake.ChatRequests.Count - before);

        // After the break a trial call goes through; it succeeds (the fake answers again) and closes the circuit.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            await Task.Delay(response.Headers.RetryAfter!.Delta ?? TimeSpan.FromSeconds(1), Ct);
            (response, body) = await PostAsync(u, Completion(model, "after " + Guid.NewGuid()));
            if (response.StatusCode == HttpStatusCode.OK)
            {
                break;
            }
            Assert.True(DateTime.UtcNow < deadline, "the circuit did not half-open");
        }
        var calls = fx.Fake.ChatRequests.Count;
        (response, _) = await PostAsync(u, Completion(model, "closed " + Guid.NewGuid()));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(calls + 1, fx.Fake.ChatRequests.Count);
    }

    [Fact]
    public async Task AStalledStreamEndsFailedWithinTheIdleTimeoutAndKeepsItsText()
    {
        var u = await fx.CreateUserAsync();
        var c = await u.CreateConversationAsync(new { model = "openai/gpt-4o-mini" });
        // One chunk, then silence far longer than the 1 s idle timeout.
        fx.Fake.Enqueue(new FakeScenario { Text = "first then nothing", ChunkDelay = TimeSpan.FromMinutes(10) });
        using var stream = await u.StreamAsync(c, new { content = "stall " + Guid.NewGuid() });
        var events = await stream.ReadAllEventsAsync(Ct);
        var error = events[^1];
        Assert.Equal("error", error.Type);
        Assert.Equal("provider_timeout", error.Json.GetProperty("code").GetString());
        Assert.Equal("first", error.Json.GetProperty("content").GetString());
        var stored = await u.WaitForMessageAsync(c, error.Json.GetProperty("messageId").GetGuid(), m => m["status"]!.GetValue<string>() != "streaming");
        Assert.Equal(("failed", "first"), (stored["status"]!.GetValue<string>(), stored["content"]!.GetValue<string>()));
    }

    [Fact]
    public async Task AnIdenticalRequestIsAnsweredFromTheCacheAtNoCostAndOnlyForTheSameUser()
    {
        var u = await fx.CreateUserAsync();
        var prompt = "cache me " + Guid.NewGuid();
        var before = fx.Fake.ChatRequests.Count;
        var (first, firstBody) = await PostAsync(u, Completion("openai/gpt-4o-mini", prompt));
        var (second, secondBody) = await PostAsync(u, Completion("openai/gpt-4o-mini", prompt));
        Assert.Equal(("MISS", "HIT"), (XCache(first), XCache(second)));
        Assert.Equal(1, fx.Fake.ChatRequests.Count - before);
        Assert.Equal(Content(firstBody), Content(secondBody));

        var usage = await u.Http.GetFromJsonAsync<JsonElement>("api/usage", Ct);
        var totals = usage.GetProperty("totals");
        Assert.Equal((2, 1), (totals.GetProperty("requests").GetInt32(), totals.GetProperty("cachedRequests").GetInt32()));
        Assert.True(totals.GetProperty("tokensSaved").GetInt64() > 0);
        var paid = totals.GetProperty("costUsd").GetDecimal();
        // Only the first answer was paid for: the cost of one call.
        Assert.Equal(paid, usage.GetProperty("byModel")[0].GetProperty("costUsd").GetDecimal());

        var other = await fx.CreateUserAsync();
        var (third, _) = await PostAsync(other, Completion("openai/gpt-4o-mini", prompt));
        Assert.Equal("MISS", XCache(third));
        Assert.Equal(2, fx.Fake.ChatRequests.Count - before);

        // Chat uses the same cache: the second identical turn costs nothing.
        var c1 = await u.CreateConversationAsync(new { model = "openai/gpt-4o-mini" });
        var c2 = await u.CreateConversationAsync(new { model = "openai/gpt-4o-mini" });
        var chatPrompt = "chat cache " + Guid.NewGuid();
        var paidAnswer = (await u.SendAsync(c1, new { content = chatPrompt })).GetProperty("assistantMessage");
        var cachedAnswer = (await u.SendAsync(c2, new { content = chatPrompt })).GetProperty("assistantMessage");
        Assert.True(paidAnswer.GetProperty("costUsd").GetDecimal() > 0);
        Assert.Equal(0m, cachedAnswer.GetProperty("costUsd").GetDecimal());
        Assert.True(cachedAnswer.GetProperty("cached").GetBoolean());
        Assert.Equal(paidAnswer.GetProperty("content").GetString(), cachedAnswer.GetProperty("content").GetString());
    }

    [Fact]
    public async Task NoCacheSkipsTheReadAndNoStoreSkipsReadAndWrite()
    {
        var u = await fx.CreateUserAsync();
        var prompt = "directives " + Guid.NewGuid();
        var before = fx.Fake.ChatRequests.Count;
        await PostAsync(u, Completion("openai/gpt-4o-mini", prompt));
        var (noCache, _) = await PostAsync(u, Completion("openai/gpt-4o-mini", prompt), "no-cache");
        Assert.Equal("BYPASS", XCache(noCache));
        Assert.Equal(2, fx.Fake.ChatRequests.Count - before);

        var unstored = "no-store " + Guid.NewGuid();
        var (noStore, _) = await PostAsync(u, Completion("openai/gpt-4o-mini", unstored), "no-store");
        Assert.Equal("BYPASS", XCache(noStore));
        var (after, _) = await PostAsync(u, Completion("openai/gpt-4o-mini", unstored));
        Assert.Equal("MISS", XCache(after));
        Assert.Equal(4, fx.Fake.ChatRequests.Count - before);
    }

    [Fact]
    public async Task ACachedAnswerStreamsExactlyLikeTheFreshOneAndExpiresAfterTheTtl()
    {
        var u = await fx.CreateUserAsync();
        var prompt = "stream  me,\n exactly " + Guid.NewGuid();
        var fresh = await StreamDeltasAsync(u, prompt);
        var stored = DateTime.UtcNow;
        var cached = await StreamDeltasAsync(u, prompt);
        Assert.Equal("MISS", fresh.Cache);
        Assert.Equal("HIT", cached.Cache);
        Assert.Equal(fresh.Deltas, cached.Deltas);
        Assert.True(fresh.Deltas.Count > 3);

        var expired = stored.AddSeconds(ResilienceServiceFixture.CacheTtlSeconds + 1) - DateTime.UtcNow;
        if (expired > TimeSpan.Zero)
        {
            await Task.Delay(expired, Ct);
        }
        Assert.Equal("MISS", (await StreamDeltasAsync(u, prompt)).Cache);
    }

    [Fact]
    public async Task ChatStreamsSayTheCacheDecisionInTheirHeadersBeforeTheFirstEvent()
    {
        var u = await fx.CreateUserAsync();
        var prompt = "stream the cache decision " + Guid.NewGuid();
        var before = fx.Fake.ChatRequests.Count;
        var fresh = await ChatStreamAsync(u, prompt, null);
        var cached = await ChatStreamAsync(u, prompt, null);
        var bypassed = await ChatStreamAsync(u, prompt, "no-cache");
        Assert.Equal(("MISS", "HIT", "BYPASS"), (fresh.Cache, cached.Cache, bypassed.Cache));
        Assert.Equal(2, fx.Fake.ChatRequests.Count - before);
        Assert.Equal(["user", "start"], cached.Events.Take(2).Select(e => e.Type));
        var done = cached.Events[^1];
        Assert.Equal("done", done.Type);
        Assert.True(done.Json.GetProperty("cached").GetBoolean());
        Assert.Equal(fresh.Events[^1].Json.GetProperty("content").GetString(), done.Json.GetProperty("content").GetString());

        // The /v1 stream says it the same way, bypass included.
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = JsonContent.Create(Completion("openai/gpt-4o-mini", prompt, stream: true)) };
        request.Headers.TryAddWithoutValidation("Cache-Control", "no-store");
        using var response = await u.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct);
        Assert.Equal(("BYPASS", "text/event-stream"), (XCache(response), response.Content.Headers.ContentType?.MediaType));
    }

    [Fact]
    public async Task RegeneratingAnAnswerAsksTheModelAgainInsteadOfTheCache()
    {
        var u = await fx.CreateUserAsync();
        var c = await u.CreateConversationAsync(new { model = "openai/gpt-4o-mini" });
        var sent = await u.SendAsync(c, new { content = "regenerate me " + Guid.NewGuid() });
        var question = sent.GetProperty("userMessage").GetProperty("id").GetGuid();
        var before = fx.Fake.ChatRequests.Count;
        fx.Fake.Enqueue(FakeScenario.Answer("A different answer."));
        using var response = await u.Http.PostAsJsonAsync($"api/conversations/{c}/messages", new { parentMessageId = question }, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("BYPASS", XCache(response));
        var answer = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("assistantMessage");
        Assert.Equal("A different answer.", answer.GetProperty("content").GetString());
        Assert.Equal(1, fx.Fake.ChatRequests.Count - before);
    }

    /// <summary>A chat answer streamed in a new conversation: the X-Cache header as it came with the headers (before any event was read), then the events.</summary>
    private static async Task<(string Cache, IReadOnlyList<SseEvent> Events)> ChatStreamAsync(TestUser u, string prompt, string? cacheControl)
    {
        var c = await u.CreateConversationAsync(new { model = "openai/gpt-4o-mini" });
        using var request = new HttpRequestMessage(HttpMethod.Post, $"api/conversations/{c}/messages") { Content = JsonContent.Create(new { content = prompt }) };
        if (cacheControl is not null)
        {
            request.Headers.TryAddWithoutValidation("Cache-Control", cacheControl);
        }
        using var response = await u.Http.SendForEventsAsync(request, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var cache = XCache(response);
        return (cache, await response.ReadAllEventsAsync(Ct));
    }

    [Fact]
    public async Task ChangingAnyParameterThatChangesTheAnswerIsACacheMiss()
    {
        var u = await fx.CreateUserAsync();
        var prompt = "key parts " + Guid.NewGuid();
        const string tool = """{"type":"function","function":{"name":"lookup","parameters":{"type":"object","properties":{"q":{"type":"string"}}}}}""";
        JsonObject Baseline() => new()
        {
            ["model"] = "openai/gpt-4o-mini",
            ["messages"] = new JsonArray(
                new JsonObject { ["role"] = "system", ["content"] = "Be brief." },
                new JsonObject { ["role"] = "user", ["content"] = prompt }),
        };
        var variants = new (string Name, Action<JsonObject> Change)[]
        {
            ("model", b => b["model"] = "anthropic/claude-haiku-4-5"), // not ollama: the circuit test counts that endpoint's calls
            ("system prompt", b => b["messages"]![0]!["content"] = "Be verbose."),
            ("no system prompt", b => b["messages"]!.AsArray().RemoveAt(0)),
            ("message text", b => b["messages"]![1]!["content"] = prompt + "!"),
            ("author name", b => b["messages"]![1]!["name"] = "ann"),
            ("image part", b => b["messages"]![1]!["content"] = new JsonArray(
                new JsonObject { ["type"] = "text", ["text"] = prompt },
                new JsonObject { ["type"] = "image_url", ["image_url"] = new JsonObject { ["url"] = "https://example.com/cat.png" } })),
            ("temperature", b => b["temperature"] = 0.3),
            ("max_tokens", b => b["max_tokens"] = 77),
            ("top_p", b => b["top_p"] = 0.5),
            ("stop", b => b["stop"] = "END"),
            ("seed", b => b["seed"] = 7),
            ("presence_penalty", b => b["presence_penalty"] = 0.5),
            ("frequency_penalty", b => b["frequency_penalty"] = 0.5),
            ("tools", b => b["tools"] = new JsonArray(JsonNode.Parse(tool))),
            ("tool_choice", b => { b["tools"] = new JsonArray(JsonNode.Parse(tool)); b["tool_choice"] = "none"; }),
            ("response_format", b => b["response_format"] = new JsonObject { ["type"] = "json_object" }),
        };
        var before = fx.Fake.ChatRequests.Count;
        var (first, _) = await PostAsync(u, Baseline());
        var (again, _) = await PostAsync(u, Baseline());
        Assert.Equal(("MISS", "HIT"), (XCache(first), XCache(again)));
        foreach (var (name, change) in variants)
        {
            var body = Baseline();
            change(body);
            var (response, _) = await PostAsync(u, body);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.True(XCache(response) == "MISS", $"changing {name} was answered from the cache ({XCache(response)})");
        }
        Assert.Equal(1 + variants.Length, fx.Fake.ChatRequests.Count - before);
    }

    private static async Task<(string Cache, List<string> Deltas)> StreamDeltasAsync(TestUser u, string prompt)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = JsonContent.Create(Completion("openai/gpt-4o-mini", prompt, stream: true)) };
        using var response = await u.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var deltas = new List<string>();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(Ct));
        while (await reader.ReadLineAsync(Ct) is { } line)
        {
            if (!line.StartsWith("data: {", StringComparison.Ordinal))
            {
                continue;
            }
            var chunk = JsonDocument.Parse(line["data: ".Length..]).RootElement;
            if (chunk.GetProperty("choices") is { ValueKind: JsonValueKind.Array } choices && choices.GetArrayLength() > 0
                && choices[0].GetProperty("delta").TryGetProperty("content", out var content) && content.GetString() is { Length: > 0 } text)
            {
                deltas.Add(text);
            }
        }
        return (XCache(response), deltas);
    }

    private static string? Content(JsonElement completion) => completion.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString();
}
