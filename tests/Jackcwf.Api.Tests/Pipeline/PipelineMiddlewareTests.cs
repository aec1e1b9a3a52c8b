using System.Diagnostics.Metrics;
using Jackcwf.Api.Ai;
using Jackcwf.Api.Ai.Pipeline;
using Jackcwf.Api.Configuration;
using Jackcwf.Api.Limits;
using Jackcwf.Api.Telemetry;
using Jackcwf.Api.Usage;
using Jackcwf.ServiceDefaults;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Caching.Hybrid;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Tests.Pipeline;

/// <summary>Each pipeline step alone, around a <see cref="FakeChatClient"/>: no host, no database.</summary>
public sealed class PipelineMiddlewareTests
{
    private static readonly ModelInfo Paid = new("openai/gpt-4o-mini", Providers.OpenAI, "gpt-4o-mini", "mini", 1m, 2m, 100);
    private static readonly ModelInfo Backup = new("anthropic/claude-haiku-4-5", Providers.Anthropic, "claude-haiku-4-5", "haiku", 3m, 4m, 100);
    private static readonly ChatMessage[] Prompt = [new(ChatRole.System, "Be brief."), new(ChatRole.User, "hello")];

    private static ChatCall NewCall(Guid? user = null, ModelInfo? model = null, CacheDirective cache = CacheDirective.Default) =>
        new() { UserId = user ?? Guid.NewGuid(), Source = UsageLedger.Gateway, RequestedModel = model ?? Paid, Cache = cache };

    private static async Task<(string Text, Exception? Error)> StreamAsync(IChatClient client, ChatCall call, IEnumerable<ChatMessage>? prompt = null, ChatOptions? options = null)
    {
        var text = "";
        try
        {
            await foreach (var u in client.GetStreamingResponseAsync(prompt ?? Prompt, call.Attach(options), TestContext.Current.CancellationToken))
            {
                text += u.Text;
            }
            return (text, null);
        }
        catch (Exception e)
        {
            return (text, e);
        }
    }

    private static ProviderException Transient(int status = 503) => new(new ProviderFailure("unavailable", 503, "down", $"HTTP {status}"));

    [Fact]
    public async Task AccountingRecordsTheAnsweringModelsTokensAndCostOnceTheStreamEnds()
    {
        var ledger = new RecordingLedger();
        var client = new FakeChatClient().Then(new FakeTurn { InputTokens = 1000, OutputTokens = 500 });
        var call = NewCall();
        var (text, error) = await StreamAsync(new UsageAccountingChatClient(client, ledger), call);
        Assert.Null(error);
        Assert.Equal("Hello there.", text);
        var line = Assert.Single(ledger.Lines);
        Assert.Equal((Paid.Id, 1000L, 500L, 0.002m, false), (line.Model, line.Input, line.Output, line.Cost, line.Cached));
        Assert.Equal(0.002m, call.CostUsd);
    }

    [Fact]
    public async Task BudgetReservationClosesHole10ConcurrentCallsNeverOvershootByMoreThanOneCall()
    {
        // Each call may cost at most MaxCost; the budget allows a few. Fifty at once must not all pass the check.
        var limiter = new StoreSpendLimiter(new InProcessLimitStore(), budget: 0.002m);
        var client = new BudgetChatClient(new FakeChatClient { Default = new FakeTurn { InputTokens = 0, OutputTokens = 100 } }, limiter, [Paid]);
        var maxCost = client.MaxCost(Prompt, new ChatOptions { MaxOutputTokens = 100 });
        var results = await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => StreamAsync(client, NewCall(limiter.User), options: new ChatOptions { MaxOutputTokens = 100 })));
        var refused = results.Count(r => r.Error is LimitRefusedException);
        Assert.InRange(refused, 1, 49);
        var spend = await limiter.SpendAsync();
        Assert.True(spend <= 0.002m + maxCost, $"spent {spend}, budget 0.002 + one call's maximum {maxCost}");
        Assert.Equal((50 - refused) * Paid.Cost(0, 100), spend);
    }

    [Fact]
    public async Task ABudgetStepThatLeavesTheSettlementToItsCallerFixesTheCostAndSettlesWithTheSlotOnlyWhenTheCallerSendsIt()
    {
        // The chat runner's calls: the budget step fixes the cost as the stream ends (complete or failed) and leaves the
        // settlement, with the generation slot's release, to the runner, which sends it after the answer's final write.
        var store = new InProcessLimitStore();
        var limiter = new StoreSpendLimiter(store, budget: 1m);
        var bucket = BucketNames.Get(BucketNames.UserConcurrency, limiter.User);
        var client = new BudgetChatClient(new FakeChatClient().Then(new FakeTurn { InputTokens = 1000, OutputTokens = 500 }).Then(FakeTurn.Failing(Transient())), limiter, [Paid]);
        var maxCost = client.MaxCost(Prompt, null);
        var spent = 0m;
        foreach (var fails in new[] { false, true })
        {
            var slot = new GenerationSlot(store, bucket, (await store.TryEnterAsync(bucket, 1))!);
            var call = new ChatCall { UserId = limiter.User, Source = UsageLedger.Chat, RequestedModel = Paid, Slot = slot, DefersSettlement = true };
            var (_, error) = await StreamAsync(client, call);
            Assert.Equal(fails, error is not null);
            var cost = call.CostUsd;
            if (!fails)
            {
                Assert.Equal(0.002m, cost);
            }
            // The stream has ended: the maximum is still reserved and the slot still held.
            Assert.Equal(spent + maxCost, await limiter.SpendAsync());
            Assert.Null(await store.TryEnterAsync(bucket, 1));

            var settle = call.TakeDeferredSettlement();
            Assert.NotNull(settle);
            Assert.Null(call.TakeDeferredSettlement());
            await settle();
            spent += cost;
            Assert.Equal(spent, await limiter.SpendAsync());
            Assert.NotNull(await store.TryEnterAsync(bucket, 1));
            await store.LeaveAsync(bucket, "local");
        }
    }

    [Fact]
    public async Task TelemetryRecordsTimeToFirstTokenAndTheFinalStatus()
    {
        using var metrics = TestMetrics.Create();
        using var seen = new MeterCapture();
        var client = new TelemetryChatClient(new FakeChatClient().Then(FakeTurn.Text("a", "b")).Then(FakeTurn.Failing(Transient())), metrics);
        await StreamAsync(client, NewCall());
        await StreamAsync(client, NewCall());
        Assert.Single(seen.Of("jackcwf_time_to_first_token_seconds"));
        Assert.Equal(["complete", "failed"], seen.Of("jackcwf_generations").Select(m => m.Tag("status")).Order());
        Assert.Equal("unavailable", Assert.Single(seen.Of("jackcwf_provider_errors")).Tag("kind"));
    }

    [Fact]
    public async Task StreamCompletenessFailsAStreamThatEndsWithoutAFinishReasonAndKeepsItsText()
    {
        var client = new StreamCompletenessChatClient(new FakeChatClient().Then(new FakeTurn { Finish = false }), Providers.OpenAI);
        var (text, error) = await StreamAsync(client, NewCall());
        Assert.Equal("Hello there.", text);
        Assert.Equal("stream_broken", Assert.IsType<ProviderException>(error).Failure.Kind);
    }

    [Fact]
    public async Task FailureClassificationHidesProviderTextMarksMidStreamFailuresAndStripsTheCall()
    {
        var fake = new FakeChatClient()
            .Then(FakeTurn.Failing(new HttpRequestException("secret sk-123 leaked", null, System.Net.HttpStatusCode.TooManyRequests)))
            .Then(new FakeTurn { FailAfter = (2, new IOException("connection reset")) });
        var client = new FailureClassifyingChatClient(fake, Providers.OpenAI);
        var (_, before) = await StreamAsync(client, NewCall());
        var failure = Assert.IsType<ProviderException>(before).Failure;
        Assert.Equal(("rate_limited", true), (failure.Kind, failure.Retryable));
        Assert.DoesNotContain("sk-123", failure.Detail);
        var (text, after) = await StreamAsync(client, NewCall());
        Assert.Equal("Hello there", text);
        Assert.Equal("stream_broken", Assert.IsType<ProviderException>(after).Failure.Kind);
        Assert.All(fake.SeenOptions, o => Assert.False(o?.AdditionalProperties?.ContainsKey(ChatCall.OptionsKey) ?? false));
    }

    [Fact]
    public async Task ResponseCacheAnswersAnIdenticalRequestOfTheSameUserAndHonoursNoCacheAndNoStore()
    {
        var fake = new FakeChatClient { Default = FakeTurn.Text("Par", "is", ".") };
        var client = new ResponseCachingChatClient(fake, CacheStore(), new ResponseCacheOptions { Mode = ResponseCacheOptions.Exact });
        var user = Guid.NewGuid();
        var first = NewCall(user);
        Assert.Equal("Paris.", (await StreamAsync(client, first)).Text);
        Assert.Equal(CacheStatuses.Miss, first.CacheStatus);

        var chunks = new List<string>();
        var second = NewCall(user);
        await foreach (var u in client.GetStreamingResponseAsync(Prompt, second.Attach(), TestContext.Current.CancellationToken))
        {
            chunks.Add(u.Text);
        }
        Assert.Equal(["Par", "is", ".", ""], chunks);
        Assert.Equal((CacheStatuses.Hit, 30L, 1), (second.CacheStatus, second.TokensSaved, fake.Calls));

        var other = NewCall();
        await StreamAsync(client, other);
        Assert.Equal((CacheStatuses.Miss, 2), (other.CacheStatus, fake.Calls));
        var changed = NewCall(user);
        await StreamAsync(client, changed, [new(ChatRole.System, "Be verbose."), new(ChatRole.User, "hello")]);
        Assert.Equal((CacheStatuses.Miss, 3), (changed.CacheStatus, fake.Calls));

        var noCache = NewCall(user, cache: CacheDirective.NoCache);
        await StreamAsync(client, noCache);
        Assert.Equal((CacheStatuses.Bypass, 4), (noCache.CacheStatus, fake.Calls));
        var noStoreUser = Guid.NewGuid();
        await StreamAsync(client, NewCall(noStoreUser, cache: CacheDirective.NoStore));
        var afterNoStore = NewCall(noStoreUser);
        await StreamAsync(client, afterNoStore);
        Assert.Equal((CacheStatuses.Miss, 6), (afterNoStore.CacheStatus, fake.Calls));
    }

    [Fact]
    public async Task SemanticCacheAnswersAParaphraseAndNotAnUnrelatedPrompt()
    {
        var fake = new FakeChatClient { Default = FakeTurn.Text("Paris.") };
        var client = new ResponseCachingChatClient(fake, CacheStore(),
            new ResponseCacheOptions { Mode = ResponseCacheOptions.Semantic, SemanticThreshold = 0.8 }, embeddings: new WordEmbeddings());
        var user = Guid.NewGuid();
        await StreamAsync(client, NewCall(user), [new(ChatRole.User, "what is the capital of france")]);
        var paraphrase = NewCall(user);
        Assert.Equal("Paris.", (await StreamAsync(client, paraphrase, [new(ChatRole.User, "what's the capital of france?")])).Text);
        Assert.Equal((CacheStatuses.Hit, 1), (paraphrase.CacheStatus, fake.Calls));
        var unrelated = NewCall(user);
        await StreamAsync(client, unrelated, [new(ChatRole.User, "how do I bake bread")]);
        Assert.Equal((CacheStatuses.Miss, 2), (unrelated.CacheStatus, fake.Calls));
    }

    [Fact]
    public async Task RetriesTransientFailuresBeforeTheFirstTokenOnlyAndHonoursRetryAfter()
    {
        var options = new ResilienceOptions { MaxRetries = 2, RetryBaseDelayMs = 1 };
        var fake = new FakeChatClient()
            .Then(FakeTurn.Failing(new ProviderException(new ProviderFailure("rate_limited", 503, "slow down", "429") { RetryAfter = TimeSpan.FromMilliseconds(10) })))
            .Then(FakeTurn.Failing(Transient()))
            .Then(FakeTurn.Text("ok"));
        var client = new RetryingChatClient(fake, options, Providers.OpenAI);
        Assert.Equal(("ok", (Exception?)null), await StreamAsync(client, NewCall()));
        Assert.Equal(3, fake.Calls);

        var midStream = new FakeChatClient().Then(new FakeTurn { FailAfter = (1, Transient()) });
        var (text, error) = await StreamAsync(new RetryingChatClient(midStream, options, Providers.OpenAI), NewCall());
        Assert.Equal(("Hello", 1), (text, midStream.Calls));
        Assert.IsType<ProviderException>(error);

        var tooLong = new FakeChatClient().Then(FakeTurn.Failing(new ProviderException(
            new ProviderFailure("rate_limited", 503, "slow down", "429") { RetryAfter = TimeSpan.FromMinutes(5) })));
        await StreamAsync(new RetryingChatClient(tooLong, options, Providers.OpenAI), NewCall());
        Assert.Equal(1, tooLong.Calls);
    }

    [Fact]
    public async Task FallbackAnswersWhenTheRequestedModelFailsBeforeItsFirstToken()
    {
        var primary = new FakeChatClient().Then(FakeTurn.Failing(Transient(500)));
        var backup = new FakeChatClient { Default = FakeTurn.Text("from backup") };
        var call = NewCall();
        var (text, error) = await StreamAsync(new FallbackChatClient(primary, [(Backup, backup)]), call);
        Assert.Equal(("from backup", (Exception?)null), (text, error));
        Assert.Equal((Backup.Id, Paid.Id), (call.AnsweringModel.Id, call.RequestedModel.Id));

        var broken = new FakeChatClient().Then(new FakeTurn { FailAfter = (1, Transient()) });
        var late = NewCall();
        var (partial, lateError) = await StreamAsync(new FallbackChatClient(broken, [(Backup, backup)]), late);
        Assert.Equal(("Hello", Paid.Id), (partial, late.AnsweringModel.Id));
        Assert.NotNull(lateError);
    }

    [Fact]
    public async Task CircuitBreakerOpensAfterTheThresholdFailsFastThenClosesAfterASuccess()
    {
        var breakers = new ProviderCircuitBreakers(new ResilienceOptions
        {
            CircuitFailureRatio = 0.5, CircuitMinimumThroughput = 2, CircuitSamplingSeconds = 30, CircuitBreakSeconds = 1,
        });
        var fake = new FakeChatClient().Then(FakeTurn.Failing(Transient()), 2);
        var client = new CircuitBreakerChatClient(fake, breakers.For("openai test"), Providers.OpenAI);
        await StreamAsync(client, NewCall());
        await StreamAsync(client, NewCall());
        Assert.Equal(1, Assert.Single(breakers.States()).State);
        var (_, open) = await StreamAsync(client, NewCall());
        var failure = Assert.IsType<ProviderException>(open).Failure;
        Assert.True(failure.IsCircuitOpen);
        Assert.Equal((503, 2), (failure.HttpStatus, fake.Calls));

        // Half-open after the break: the next call is tried, and its success closes the circuit.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var (text, error) = await StreamAsync(client, NewCall());
            if (error is null)
            {
                Assert.Equal("Hello there.", text);
                break;
            }
            Assert.True(DateTime.UtcNow < deadline, "the circuit never half-opened");
            await Task.Delay(100, TestContext.Current.CancellationToken);
        }
        Assert.Equal(0, Assert.Single(breakers.States()).State);
        Assert.Equal(3, fake.Calls);
    }

    [Fact]
    public async Task CircuitBreakerCountsStreamsCutAfterTheirFirstTokenAndItsStateSaysHalfOpenOnceTheBreakIsOver()
    {
        var breakers = new ProviderCircuitBreakers(new ResilienceOptions
        {
            CircuitFailureRatio = 0.5, CircuitMinimumThroughput = 2, CircuitSamplingSeconds = 30, CircuitBreakSeconds = 1,
        });
        var cut = new ProviderException(new ProviderFailure("stream_broken", 502, "broken", "ended early"));
        var fake = new FakeChatClient().Then(new FakeTurn { FailAfter = (1, cut) }, 2);
        var client = new RetryingChatClient(new CircuitBreakerChatClient(fake, breakers.For("openai cut"), Providers.OpenAI),
            new ResilienceOptions { MaxRetries = 2, RetryBaseDelayMs = 1 }, Providers.OpenAI);
        for (var i = 0; i < 2; i++)
        {
            var (text, error) = await StreamAsync(client, NewCall());
            Assert.Equal("Hello", text);
            Assert.Equal("stream_broken", Assert.IsType<ProviderException>(error).Failure.Kind);
        }
        // Never retried (two calls for two requests), and both counted: the circuit is open.
        Assert.Equal(2, fake.Calls);
        Assert.Equal(1, Assert.Single(breakers.States()).State);
        var (_, open) = await StreamAsync(client, NewCall());
        Assert.True(Assert.IsType<ProviderException>(open).Failure.IsCircuitOpen);
        Assert.Equal(2, fake.Calls);

        // No call arrives after the break: the next one would be the trial, and the state says so.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (Assert.Single(breakers.States()).State != 2)
        {
            Assert.True(DateTime.UtcNow < deadline, "the circuit state never said half-open");
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
        Assert.Equal(("Hello there.", (Exception?)null), await StreamAsync(client, NewCall()));
        Assert.Equal(0, Assert.Single(breakers.States()).State);

        // A complete stream, a stopped one and a refused request are no failures of the endpoint.
        var healthy = new FakeChatClient().Then(new FakeTurn { FailAfter = (1, new ProviderException(new ProviderFailure("bad_request", 502, "no", "400"))) }, 3);
        var circuit = breakers.For("openai healthy");
        var guarded = new CircuitBreakerChatClient(healthy, circuit, Providers.OpenAI);
        for (var i = 0; i < 3; i++)
        {
            await StreamAsync(guarded, NewCall());
        }
        await foreach (var _ in guarded.GetStreamingResponseAsync(Prompt, NewCall().Attach(), TestContext.Current.CancellationToken))
        {
            break;
        }
        Assert.Equal(Polly.CircuitBreaker.CircuitState.Closed, circuit.State);
    }

    [Fact]
    public void CircuitEndpointsNameTheBaseUrlWithoutCredentials()
    {
        var providers = new ProvidersOptions();
        providers.Ollama.BaseUrl = "http://admin:s3cret@models.internal:11434/v1?api-key=k3y";
        Assert.Equal("ollama http://models.internal:11434/v1", ChatClientProvider.EndpointOf(providers, Providers.Ollama));
        Assert.Equal("openai https://api.openai.com/v1", ChatClientProvider.EndpointOf(providers, Providers.OpenAI));
    }

    [Fact]
    public async Task ResponseCacheKeyChangesWithEveryMessageAndOptionThatChangesTheAnswer()
    {
        var fake = new FakeChatClient { Default = FakeTurn.Text("answer") };
        var client = new ResponseCachingChatClient(fake, CacheStore(), new ResponseCacheOptions { Mode = ResponseCacheOptions.Exact });
        var user = Guid.NewGuid();
        var schema = System.Text.Json.JsonDocument.Parse("""{"type":"object","properties":{"a":{"type":"string"}}}""").RootElement;
        var otherSchema = System.Text.Json.JsonDocument.Parse("""{"type":"object","properties":{"b":{"type":"string"}}}""").RootElement;
        ChatOptions Base() => new()
        {
            Temperature = 0.5f, TopP = 0.9f, TopK = 40, MaxOutputTokens = 100, Seed = 1, FrequencyPenalty = 0.1f, PresencePenalty = 0.1f,
            StopSequences = ["END"], AllowMultipleToolCalls = true, Instructions = "brief",
            Tools = [AIFunctionFactory.CreateDeclaration("lookup", "Looks up", schema), AIFunctionFactory.CreateDeclaration("other", "Other", schema)],
            ToolMode = ChatToolMode.RequireSpecific("lookup"),
            ResponseFormat = ChatResponseFormat.ForJsonSchema(schema, "answer", "An answer"),
            AdditionalProperties = new() { ["strict"] = true },
        };
        ChatMessage[] BaseMessages() =>
        [
            new(ChatRole.System, "Be brief."),
            new(ChatRole.User, [new TextContent("look at this"), new UriContent(new Uri("https://example.com/a.png"), "image/*")]) { AuthorName = "ann" },
            new(ChatRole.Assistant, [new FunctionCallContent("c1", "lookup", new Dictionary<string, object?> { ["a"] = "x" })]),
            new(ChatRole.Tool, [new FunctionResultContent("c1", "42")]),
            new(ChatRole.User, "and now?"),
        ];
        var variants = new (string Name, Func<ChatMessage[], ChatMessage[]> Messages, Action<ChatOptions> Options)[]
        {
            ("model", m => m, o => o.ModelId = "another"),
            ("system prompt", m => [new(ChatRole.System, "Be verbose."), .. m[1..]], _ => { }),
            ("earlier user message", m => [m[0], new(ChatRole.User, "look at that") { AuthorName = "ann" }, .. m[2..]], _ => { }),
            ("author name", m => [m[0], new(ChatRole.User, m[1].Contents) { AuthorName = "bob" }, .. m[2..]], _ => { }),
            ("image part", m => [m[0], new(ChatRole.User, [new TextContent("look at this"), new UriContent(new Uri("https://example.com/b.png"), "image/*")]) { AuthorName = "ann" }, .. m[2..]], _ => { }),
            ("image data", m => [m[0], new(ChatRole.User, [new TextContent("look at this"), new DataContent(new byte[] { 1, 2, 3 }, "image/png")]) { AuthorName = "ann" }, .. m[2..]], _ => { }),
            ("tool call arguments", m => [.. m[..2], new(ChatRole.Assistant, [new FunctionCallContent("c1", "lookup", new Dictionary<string, object?> { ["a"] = "y" })]), .. m[3..]], _ => { }),
            ("tool result", m => [.. m[..3], new(ChatRole.Tool, [new FunctionResultContent("c1", "43")]), m[4]], _ => { }),
            ("last message", m => [.. m[..4], new(ChatRole.User, "and then?")], _ => { }),
            ("temperature", m => m, o => o.Temperature = 0.6f),
            ("top_p", m => m, o => o.TopP = 0.8f),
            ("top_k", m => m, o => o.TopK = 41),
            ("max tokens", m => m, o => o.MaxOutputTokens = 101),
            ("seed", m => m, o => o.Seed = 2),
            ("frequency penalty", m => m, o => o.FrequencyPenalty = 0.2f),
            ("presence penalty", m => m, o => o.PresencePenalty = 0.2f),
            ("stop", m => m, o => o.StopSequences = ["STOP"]),
            ("parallel tool calls", m => m, o => o.AllowMultipleToolCalls = false),
            ("instructions", m => m, o => o.Instructions = "verbose"),
            ("reasoning", m => m, o => o.Reasoning = new ReasoningOptions { Effort = ReasoningEffort.High }),
            ("tool description", m => m, o => o.Tools = [AIFunctionFactory.CreateDeclaration("lookup", "Finds", schema), o.Tools![1]]),
            ("tool schema", m => m, o => o.Tools = [AIFunctionFactory.CreateDeclaration("lookup", "Looks up", otherSchema), o.Tools![1]]),
            ("tool choice", m => m, o => o.ToolMode = ChatToolMode.RequireSpecific("other")),
            ("tool choice auto", m => m, o => o.ToolMode = ChatToolMode.Auto),
            ("response format schema", m => m, o => o.ResponseFormat = ChatResponseFormat.ForJsonSchema(otherSchema, "answer", "An answer")),
            ("response format json", m => m, o => o.ResponseFormat = ChatResponseFormat.Json),
            ("strict", m => m, o => o.AdditionalProperties = null),
        };

        var first = NewCall(user);
        await StreamAsync(client, first, BaseMessages(), Base());
        Assert.Equal(CacheStatuses.Miss, first.CacheStatus);
        var again = NewCall(user);
        await StreamAsync(client, again, BaseMessages(), Base());
        Assert.Equal(CacheStatuses.Hit, again.CacheStatus);
        foreach (var (name, messages, change) in variants)
        {
            var options = Base();
            change(options);
            var call = NewCall(user);
            await StreamAsync(client, call, messages(BaseMessages()), options);
            Assert.True(call.CacheStatus == CacheStatuses.Miss, $"changing the {name} still hit the cache");
        }
        var otherModel = NewCall(user, Backup);
        await StreamAsync(client, otherModel, BaseMessages(), Base());
        Assert.Equal(CacheStatuses.Miss, otherModel.CacheStatus);
        Assert.Equal(2 + variants.Length, fake.Calls);

        // A new ChatOptions property must be weighed here (and in the key) before it can be forgotten.
        string[] weighed =
        [
            "ConversationId", "Instructions", "Temperature", "MaxOutputTokens", "TopP", "TopK", "FrequencyPenalty", "PresencePenalty", "Seed",
            "Reasoning", "ResponseFormat", "ModelId", "StopSequences", "AllowMultipleToolCalls", "ToolMode", "Tools", "AllowBackgroundResponses",
            "ContinuationToken", "RawRepresentationFactory", "AdditionalProperties",
        ];
        Assert.Empty(typeof(ChatOptions).GetProperties().Select(p => p.Name).Except(weighed));
    }

    [Fact]
    public async Task TimeoutsEndAStalledStreamAsATimeoutAndKeepTheText()
    {
        var fake = new FakeChatClient().Then(new FakeTurn { StallAfter = 2 }).Then(new FakeTurn { StallAfter = 0 });
        var client = new TimeoutChatClient(fake, TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(200), Providers.OpenAI);
        var (text, error) = await StreamAsync(client, NewCall());
        Assert.Equal("Hello there", text);
        var failure = Assert.IsType<ProviderException>(error).Failure;
        Assert.Equal("timeout", failure.Kind);
        Assert.Contains("kept", failure.Detail);

        var silent = new TimeoutChatClient(new FakeChatClient().Then(new FakeTurn { StallAfter = 0 }), TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(30), Providers.OpenAI);
        var (none, firstTokenError) = await StreamAsync(silent, NewCall());
        Assert.Equal("", none);
        Assert.Equal("timeout", Assert.IsType<ProviderException>(firstTokenError).Failure.Kind);
    }

    private static IResponseCacheStore CacheStore()
    {
        var services = new ServiceCollection();
        services.AddHybridCache()
            .AddSerializer(new JsonHybridSerializer<CachedAnswer>(ResponseCacheJsonContext.Default.CachedAnswer))
            .AddSerializer(new JsonHybridSerializer<SemanticIndex>(ResponseCacheJsonContext.Default.SemanticIndex));
        return new HybridResponseCacheStore(services.BuildServiceProvider().GetRequiredService<HybridCache>());
    }
}

internal sealed class RecordingLedger : IUsageRecorder
{
    public List<(string Model, long Input, long Output, decimal Cost, bool Cached, long Saved)> Lines { get; } = [];

    public Task RecordAsync(Guid userId, Guid? apiKeyId, string model, string source, long inputTokens, long outputTokens, decimal costUsd, bool cached = false, long tokensSaved = 0)
    {
        lock (Lines)
        {
            Lines.Add((model, inputTokens, outputTokens, costUsd, cached, tokensSaved));
        }
        return Task.CompletedTask;
    }
}

/// <summary>The budget check over a real limit store, as <see cref="LimitGuard"/> does it (an empty ledger seeds the month).</summary>
internal sealed class StoreSpendLimiter(ILimitStore store, decimal budget) : ISpendLimiter
{
    private static readonly string Month = LimitGuard.MonthKey(DateTime.UtcNow);

    public Guid User { get; } = Guid.NewGuid();

    public int MaxOutputTokens => 100;

    public async ValueTask<(SpendReservation? Reservation, LimitRefusal? Refusal)> ReserveSpendAsync(Guid userId, decimal maxCost)
    {
        var outcome = await store.TryReserveSpendAsync(userId, Month, maxCost, budget);
        if (outcome == ReserveOutcome.NotSeeded)
        {
            outcome = await store.TryReserveSpendAsync(userId, Month, maxCost, budget, seed: 0);
        }
        return outcome == ReserveOutcome.Reserved
            ? (new SpendReservation(userId, maxCost), null)
            : (null, new LimitRefusal("budget", TimeSpan.FromDays(1), "Monthly budget reached", "over"));
    }

    public async ValueTask SettleSpendAsync(SpendReservation reservation, decimal actualCost, GenerationSlot? slot = null)
    {
        var delta = new SpendDelta(reservation.UserId, Month, actualCost - reservation.Amount);
        await (slot is null ? store.AddSpendAsync(delta.UserId, delta.Month, delta.Amount) : slot.ReleaseAsync(delta));
    }

    public async Task<decimal> SpendAsync() => await store.GetSpendAsync(User, Month) ?? 0;
}

/// <summary>Bag-of-words vectors: texts sharing most words are close, unrelated ones orthogonal.</summary>
internal sealed class WordEmbeddings : IEmbeddingGenerator<string, Embedding<float>>
{
    public Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null, CancellationToken cancellationToken = default) =>
        Task.FromResult(new GeneratedEmbeddings<Embedding<float>>(values.Select(v =>
        {
            var vector = new float[64];
            foreach (var word in v.ToLowerInvariant().Split([' ', '?', '\'', '.'], StringSplitOptions.RemoveEmptyEntries))
            {
                vector[(int)((uint)string.GetHashCode(word, StringComparison.Ordinal) % 64)] += 1;
            }
            return new Embedding<float>(vector);
        })));

    public object? GetService(Type serviceType, object? serviceKey = null) => null;

    public void Dispose()
    {
    }
}

internal static class TestMetrics
{
    public static JackcwfMetrics Create() => new(
        new ServiceCollection().AddMetrics().BuildServiceProvider().GetRequiredService<IMeterFactory>(),
        new DrainState(new Microsoft.Extensions.Hosting.Internal.ApplicationLifetime(NullLogger<Microsoft.Extensions.Hosting.Internal.ApplicationLifetime>.Instance)),
        Options.Create(new BuildOptions()));
}

/// <summary>Measurements of the platform meter while it lives.</summary>
internal sealed class MeterCapture : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly List<(string Name, KeyValuePair<string, object?>[] Tags)> _seen = [];

    public MeterCapture()
    {
        _listener.InstrumentPublished = (i, l) =>
        {
            if (i.Meter.Name == Extensions.PlatformMeterName)
            {
                l.EnableMeasurementEvents(i);
            }
        };
        _listener.SetMeasurementEventCallback<double>((i, _, tags, _) => Add(i.Name, tags));
        _listener.SetMeasurementEventCallback<long>((i, _, tags, _) => Add(i.Name, tags));
        _listener.Start();
    }

    private void Add(string name, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        lock (_seen)
        {
            _seen.Add((name, tags.ToArray()));
        }
    }

    public IReadOnlyList<Seen> Of(string name)
    {
        lock (_seen)
        {
            return [.. _seen.Where(s => s.Name == name).Select(s => new Seen(s.Tags))];
        }
    }

    public void Dispose() => _listener.Dispose();

    public sealed record Seen(KeyValuePair<string, object?>[] Tags)
    {
        public string? Tag(string key) => Tags.FirstOrDefault(t => t.Key == key).Value?.ToString();
    }
}
