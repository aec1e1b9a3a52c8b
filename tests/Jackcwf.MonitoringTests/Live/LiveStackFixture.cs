using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Jackcwf.MonitoringTests.Infrastructure;
using Jackcwf.Testing;

namespace Jackcwf.MonitoringTests.Live;

[CollectionDefinition(Name)]
public sealed class LiveStackCollection : ICollectionFixture<LiveStackFixture>
{
    public const string Name = "live stack";
}

/// <summary>What the traffic did, so tests know what the metrics must show.</summary>
public sealed record TrafficFacts
{
    public int DemoChatsCompleted { get; init; }

    /// <summary>demo/echo answers through <c>POST /v1/chat/completions</c> with an API key.</summary>
    public int GatewayCompletions { get; init; }

    public int KeyRateRefusals { get; init; }

    public int BudgetRefusals { get; init; }

    /// <summary>Answers of <see cref="LiveStackFixture.PaidModel"/>.</summary>
    public int PaidChatsCompleted { get; init; }

    /// <summary>Generations of <see cref="LiveStackFixture.FailingModel"/>, which the fake provider fails.</summary>
    public int FailedChats { get; init; }

    /// <summary>Chats of <see cref="LiveStackFixture.FallbackModel"/> that the fake fails and demo/echo answers.</summary>
    public int FallbackAnswers { get; init; }

    /// <summary>Gateway requests answered from the response cache (RESPONSE_CACHE=exact).</summary>
    public int ResponseCacheHits { get; init; }

    /// <summary>Texts embedded with the local model: two through <c>POST /v1/embeddings</c>, a document's chunk and a question searching it.</summary>
    public int EmbeddedInputs { get; init; }

    public long PaidInputTokens { get; init; }

    public long PaidOutputTokens { get; init; }

    /// <summary>Cost of the paid answers from the catalogue prices (<c>GET /api/models</c>).</summary>
    public double ExpectedPaidCostUsd { get; init; }

    /// <summary>The costUsd the service reported in the <c>done</c> events.</summary>
    public double ReportedPaidCostUsd { get; init; }

    public int ConversationsCreated { get; init; }

    public int UserMessagesStored { get; init; }

    public int StreamResumes { get; init; }

    /// <summary>Requests answered from an earlier request with the same Idempotency-Key.</summary>
    public int IdempotentReplays { get; init; }

    public int InputSizeRefusals { get; init; }

    public int NotFoundAnswers { get; init; }

    public int FailedLogins { get; init; }

    public int SuccessfulLogins { get; init; }
}

/// <summary>
/// The built service (SQLite), the fake OpenAI server and a real Prometheus scraping the service
/// every second with the repository's rule files loaded; traffic is driven once for all tests.
/// </summary>
public sealed partial class LiveStackFixture : IAsyncLifetime
{
    public const string Version = "9.8.7-monitoring";
    public const string Commit = "0badc0ffee";

    /// <summary>A priced model answered by the fake OpenAI server.</summary>
    public const string PaidModel = "openai/gpt-4o";

    /// <summary>The model whose calls the fake OpenAI server fails with 500.</summary>
    public const string FailingModel = "openai/gpt-4o-mini";

    /// <summary>A model the fake OpenAI server fails, with demo/echo as its fallback (MODEL_FALLBACKS).</summary>
    public const string FallbackModel = "openai/gpt-4.1-mini";
    private const int MaxMessageChars = 200;
    private const int KeyRequestsPerMinute = 3;

    public FakeLlmServer Fake { get; private set; } = null!;

    public ApiProcess Api { get; private set; } = null!;

    public PrometheusServer Prometheus { get; private set; } = null!;

    public TrafficFacts Facts { get; private set; } = null!;

    /// <summary>The service's <c>/metrics</c> text after the traffic.</summary>
    public string Scrape { get; private set; } = "";

    /// <summary>Names of every sample line in <see cref="Scrape"/> (histograms as <c>_bucket</c>, <c>_sum</c>, <c>_count</c>).</summary>
    public IReadOnlySet<string> ScrapedSampleNames { get; private set; } = new HashSet<string>();

    /// <summary>Names of the <c># TYPE</c> lines in <see cref="Scrape"/> (histograms by their base name).</summary>
    public IReadOnlySet<string> ScrapedFamilies { get; private set; } = new HashSet<string>();

    public async ValueTask InitializeAsync()
    {
        Fake = await FakeLlmServer.StartAsync();
        Api = await ApiProcess.StartAsync(new ApiProcessOptions
        {
            Environment = new Dictionary<string, string?>
            {
                ["DATABASE_URL"] = null,
                ["REDIS_URL"] = null,
                ["OPENAI_API_KEY"] = "sk-test",
                ["OPENAI_BASE_URL"] = Fake.OpenAiBaseUrl.ToString(),
                ["ANTHROPIC_API_KEY"] = null,
                ["OLLAMA_BASE_URL"] = null,
                ["DEFAULT_MODEL"] = "demo/echo",
                ["DEMO_CHUNK_DELAY_MS"] = "2",
                ["MONITORING_INTERVAL_SECONDS"] = "1",
                ["MAX_MESSAGE_CHARS"] = MaxMessageChars.ToString(CultureInfo.InvariantCulture),
                ["RATE_LIMIT_KEY_PER_MINUTE"] = KeyRequestsPerMinute.ToString(CultureInfo.InvariantCulture),
                // Two answers of the paid model fit, the third is refused.
                ["DEFAULT_MONTHLY_BUDGET_USD"] = "0.01",
                ["MODEL_FALLBACKS"] = $"{FallbackModel}=demo/echo",
                ["RESPONSE_CACHE"] = "exact",
                ["SHUTDOWN_DRAIN_DELAY_SECONDS"] = "0",
                ["APP_VERSION"] = Version,
                ["GIT_COMMIT"] = Commit,
                ["LOG_LEVEL"] = "Warning",
            },
        });
        Prometheus = await PrometheusServer.StartAsync($"127.0.0.1:{Api.Port}", MonitoringFiles.RuleFiles);

        // Rates need a sample before the traffic: wait for the first scrape.
        await Prometheus.EventuallyAsync("up{job=\"jackcwf\"}", v => v == 1);
        using var http = Api.CreateClient();
        Facts = await DriveTrafficAsync(http);

        // Two more scrapes, so that rates over the traffic have a before and an after.
        await Prometheus.EventuallyAsync("sum(jackcwf_conversations_created_total{job=\"jackcwf\"})", v => v >= Facts.ConversationsCreated);
        // The traffic can be over between two scrapes (it takes about a second): a few plain requests
        // spread over later scrapes make sure request-duration series already scraped keep increasing.
        for (var i = 0; i < 3; i++)
        {
            await http.GetAsync("openapi/v1.json");
            await Task.Delay(TimeSpan.FromSeconds(1.2));
        }
        await Task.Delay(TimeSpan.FromSeconds(2));
        Scrape = await http.GetStringAsync("metrics");
        ScrapedSampleNames = SampleLine().Matches(Scrape).Select(m => m.Groups[1].Value).ToHashSet(StringComparer.Ordinal);
        ScrapedFamilies = TypeLine().Matches(Scrape).Select(m => m.Groups[1].Value).ToHashSet(StringComparer.Ordinal);
    }

    public async ValueTask DisposeAsync()
    {
        if (Prometheus is not null)
        {
            await Prometheus.DisposeAsync();
        }

        if (Api is not null)
        {
            await Api.DisposeAsync();
        }

        if (Fake is not null)
        {
            await Fake.DisposeAsync();
        }
    }

    /// <summary>Service and Prometheus logs, for failure messages.</summary>
    public string Diagnostics() =>
        $"--- service warnings and errors (last 5) ---\n{string.Join("\n", Api.LogLines.Select(Problem).OfType<string>().TakeLast(5))}\n"
        + $"--- prometheus warnings and errors (last 5) ---\n{string.Join("\n", Prometheus.Logs.Split('\n').Where(l => l.Contains("level=warn", StringComparison.Ordinal) || l.Contains("level=error", StringComparison.Ordinal)).TakeLast(5))}";

    // "LogLevel Category: Message" of a JSON log line at Warning or above; null otherwise.
    private static string? Problem(string line)
    {
        try
        {
            using var json = JsonDocument.Parse(line);
            var level = json.RootElement.TryGetProperty("LogLevel", out var l) ? l.GetString() : null;
            if (level is not ("Warning" or "Error" or "Critical"))
            {
                return null;
            }

            var message = json.RootElement.TryGetProperty("Message", out var m) ? m.GetString() : "";
            return $"{level} {json.RootElement.GetProperty("Category").GetString()}: {Tail(message ?? "", 300)}";
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string Tail(string text, int length = 6000) => text.Length > length ? text[^length..] : text;

    private async Task<TrafficFacts> DriveTrafficAsync(HttpClient http)
    {
        var email = $"monitoring-{Guid.NewGuid():N}@example.com";
        const string password = "Monitor-Pass1";
        await ExpectAsync(await http.PostAsJsonAsync("api/auth/register", new { email, password }), HttpStatusCode.OK, "register");
        await ExpectAsync(await http.PostAsJsonAsync("api/auth/login", new { email, password = "Wrong-Pass1" }), HttpStatusCode.Unauthorized, "login with a wrong password");
        var login = await ReadJsonAsync(await http.PostAsJsonAsync("api/auth/login", new { email, password }), "login");
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", (string)login["accessToken"]!);

        var models = await ReadJsonAsync(await http.GetAsync("api/models"), "list models");
        var priced = models.AsArray().Single(m => (string?)m!["id"] == PaidModel)!;
        var inputPrice = (double)priced["inputPricePerMillionTokens"]!;
        var outputPrice = (double)priced["outputPricePerMillionTokens"]!;

        // Two demo chats, one streamed and resumed from its first delta, one answered as JSON.
        var demo = await CreateConversationAsync(http, "demo/echo");
        var streamed = await SendStreamingAsync(http, demo, "hello monitoring world from the tests");
        Assert.True(streamed.Done is not null, "The demo chat did not end with a done event:\n" + streamed.Raw);
        var resumed = await ResumeAsync(http, demo, streamed.AssistantId, streamed.FirstDeltaId);
        Assert.True(resumed.Done is not null, "The resumed stream did not end with a done event:\n" + resumed.Raw);
        using (var json = new HttpRequestMessage(HttpMethod.Post, $"api/conversations/{demo}/messages") { Content = JsonContent.Create(new { content = "a second message, answered as JSON" }) })
        {
            json.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
            await ReadJsonAsync(await http.SendAsync(json), "send a JSON message");
        }

        // The same Idempotency-Key twice: the second request is answered from the idempotency record.
        var idempotencyKey = Guid.NewGuid().ToString();
        for (var i = 0; i < 2; i++)
        {
            using var retry = new HttpRequestMessage(HttpMethod.Post, $"api/conversations/{demo}/messages") { Content = JsonContent.Create(new { content = "sent twice, stored once" }) };
            retry.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
            retry.Headers.Add("Idempotency-Key", idempotencyKey);
            await ReadJsonAsync(await http.SendAsync(retry), $"send an idempotent message (attempt {i + 1})");
        }

        // A provider failure first (the budget below would refuse it later): the fake answers 500 to
        // every attempt, SDK retries included.
        var failingChat = await CreateConversationAsync(http, FailingModel);
        Fake.Default = FakeScenario.Error(500) with { RetryAfter = TimeSpan.FromMilliseconds(10) };
        var failed = await SendStreamingAsync(http, failingChat, "This one fails at the provider.");
        // The same failure for a model with a fallback: demo/echo answers instead.
        var fallbackChat = await CreateConversationAsync(http, FallbackModel);
        var fellBack = await SendStreamingAsync(http, fallbackChat, "This one fails over to the demo model.");
        Fake.Default = FakeScenario.Echo;
        Assert.True(failed.Error is not null, "A provider failure should end with an error event:\n" + failed.Raw);
        Assert.True(fellBack.Done is not null, $"The {FallbackModel} chat should be answered by its fallback:\n{fellBack.Raw}\n{Diagnostics()}");

        // Two answers from a priced model through the fake OpenAI server, with known token counts. The
        // second comes after Prometheus has seen the first, so that rates over the cost counter move
        // (Prometheus cannot see the increase that created a series).
        const int inputTokens = 1200;
        const int outputTokens = 300;
        var paidChat = await CreateConversationAsync(http, PaidModel);
        var reportedCost = 0.0;
        for (var i = 0; i < 2; i++)
        {
            Fake.Enqueue(new FakeScenario { Text = "Paris is the capital of France.", InputTokens = inputTokens, OutputTokens = outputTokens });
            var paid = await SendStreamingAsync(http, paidChat, "What is the capital of France?");
            Assert.True(paid.Done is not null, $"The {PaidModel} chat did not end with a done event:\n{paid.Raw}\n{Diagnostics()}");
            reportedCost += paid.Done!.Value.GetProperty("costUsd").GetDouble();
            if (i == 0)
            {
                await Prometheus.EventuallyAsync($"sum(jackcwf_llm_cost_usd_total{{model=\"{PaidModel}\"}})", v => v > 0);
            }
        }

        // The budget (0.01 USD) is spent now: the next paid answer is refused.
        using (var overBudget = new HttpRequestMessage(HttpMethod.Post, $"api/conversations/{paidChat}/messages") { Content = JsonContent.Create(new { content = "One more, please." }) })
        {
            overBudget.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
            await ExpectAsync(await http.SendAsync(overBudget), HttpStatusCode.TooManyRequests, "a paid answer over the monthly budget");
        }

        // An API key on the OpenAI-compatible gateway: within its rate limit, then one request over it,
        // and one request with an unknown key.
        var created = await ReadJsonAsync(await http.PostAsJsonAsync("api/keys", new { name = "monitoring" }), "create an API key", HttpStatusCode.Created);
        using (var gateway = Api.CreateClient())
        {
            gateway.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", (string)created["key"]!);
            for (var i = 0; i <= KeyRequestsPerMinute; i++)
            {
                // The third call repeats the second: the response cache answers it.
                var completion = new { model = "demo/echo", messages = new[] { new { role = "user", content = $"gateway call {Math.Min(i + 1, 2)}" } } };
                await ExpectAsync(await gateway.PostAsJsonAsync("v1/chat/completions", completion),
                    i < KeyRequestsPerMinute ? HttpStatusCode.OK : HttpStatusCode.TooManyRequests, $"gateway call {i + 1} with the API key");
                // One scrape between the calls, so that rates over the cache counters see them grow.
                await Task.Delay(TimeSpan.FromSeconds(1.5));
            }

            gateway.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "jk-not-a-real-key");
            await ExpectAsync(await gateway.GetAsync("v1/models"), HttpStatusCode.Unauthorized, "the gateway with an unknown API key");
        }

        // Two texts embedded by the local model (with the user's token: the key's minute is used up).
        var embeddings = await ReadJsonAsync(await http.PostAsJsonAsync("v1/embeddings", new { model = "default", input = new[] { "first text to embed", "second text to embed" } }), "embed two texts");
        Assert.Equal(2, embeddings["data"]!.AsArray().Count);

        // A document: uploaded, processed in the background (its one chunk embedded), then searched by a
        // demo turn (the question embedded): files processed, processing time and retrieval latency.
        using (var form = new MultipartFormDataContent { { new ByteArrayContent("Monitoring notes: the probe checks every dependency once a second."u8.ToArray()), "file", "notes.txt" } })
        {
            var file = await ReadJsonAsync(await http.PostAsync("api/files", form), "upload a document", HttpStatusCode.Created);
            var fileId = (string)file["id"]!;
            var deadline = DateTime.UtcNow.AddSeconds(120);
            while ((string?)file["status"] == "processing" && DateTime.UtcNow < deadline)
            {
                await Task.Delay(500);
                file = await ReadJsonAsync(await http.GetAsync($"api/files/{fileId}"), "read the document's status");
            }
            Assert.True((string?)file["status"] == "ready", "The document was not processed: " + file.ToJsonString());
            using var grounded = new HttpRequestMessage(HttpMethod.Post, $"api/conversations/{demo}/messages")
            {
                Content = JsonContent.Create(new { content = "what does the probe check?", fileIds = new[] { fileId } }),
            };
            grounded.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
            var answer = await ReadJsonAsync(await http.SendAsync(grounded), "ask about the document");
            Assert.Equal(fileId, (string?)answer["assistantMessage"]!["sources"]![0]!["fileId"]);
        }

        // Refused: content over MAX_MESSAGE_CHARS; and a 404.
        var tooLong = new string('x', MaxMessageChars + 50);
        await ExpectAsync(await http.PostAsJsonAsync($"api/conversations/{demo}/messages", new { content = tooLong }), HttpStatusCode.BadRequest, "send an over-long message");
        await ExpectAsync(await http.GetAsync($"api/conversations/{Guid.NewGuid()}"), HttpStatusCode.NotFound, "get an unknown conversation");

        return new TrafficFacts
        {
            DemoChatsCompleted = 4,
            GatewayCompletions = KeyRequestsPerMinute,
            KeyRateRefusals = 1,
            BudgetRefusals = 1,
            PaidChatsCompleted = 2,
            FailedChats = 1,
            FallbackAnswers = 1,
            ResponseCacheHits = 1,
            EmbeddedInputs = 4,
            PaidInputTokens = 2 * inputTokens,
            PaidOutputTokens = 2 * outputTokens,
            ExpectedPaidCostUsd = 2 * ((inputTokens * inputPrice) + (outputTokens * outputPrice)) / 1_000_000,
            ReportedPaidCostUsd = reportedCost,
            ConversationsCreated = 4,
            UserMessagesStored = 8,
            IdempotentReplays = 1,
            StreamResumes = 1,
            InputSizeRefusals = 1,
            NotFoundAnswers = 1,
            FailedLogins = 1,
            SuccessfulLogins = 1,
        };
    }

    private static async Task<string> CreateConversationAsync(HttpClient http, string model)
    {
        var created = await ReadJsonAsync(await http.PostAsJsonAsync("api/conversations", new { title = "monitoring " + model, model }), "create a conversation", HttpStatusCode.Created);
        return (string)created["id"]!;
    }

    private sealed record StreamResult(string AssistantId, string? FirstDeltaId, JsonElement? Done, JsonElement? Error, string Raw);

    private static async Task<StreamResult> SendStreamingAsync(HttpClient http, string conversation, string content)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"api/conversations/{conversation}/messages") { Content = JsonContent.Create(new { content }) };
        using var response = await http.SendForEventsAsync(request);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"Streaming a message answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        return Summarise(await response.ReadAllEventsAsync());
    }

    private static async Task<StreamResult> ResumeAsync(HttpClient http, string conversation, string assistant, string? lastEventId)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"api/conversations/{conversation}/messages/{assistant}/events");
        if (lastEventId is not null)
        {
            request.Headers.Add("Last-Event-ID", lastEventId);
        }

        using var response = await http.SendForEventsAsync(request);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"Resuming a stream answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        return Summarise(await response.ReadAllEventsAsync(), assistant);
    }

    private static StreamResult Summarise(IReadOnlyList<SseEvent> events, string? assistant = null)
    {
        var raw = string.Join("\n", events.Select(e => e.Raw));
        var start = events.FirstOrDefault(e => e.Event == "start");
        var assistantId = assistant ?? (start is null ? "" : start.Json.GetProperty("messageId").GetString()!);
        var firstDelta = events.FirstOrDefault(e => e.Event == "delta");
        var done = events.FirstOrDefault(e => e.Event == "done");
        var error = events.FirstOrDefault(e => e.Event == "error");
        return new StreamResult(assistantId, firstDelta?.Id, done?.Json, error?.Json, raw);
    }

    private static async Task ExpectAsync(HttpResponseMessage response, HttpStatusCode expected, string what)
    {
        using (response)
        {
            Assert.True(response.StatusCode == expected, $"{what}: expected {(int)expected}, got {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }
    }

    private static async Task<JsonNode> ReadJsonAsync(HttpResponseMessage response, string what, HttpStatusCode expected = HttpStatusCode.OK)
    {
        using (response)
        {
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == expected, $"{what}: expected {(int)expected}, got {(int)response.StatusCode}: {body}");
            return JsonNode.Parse(body) ?? throw new InvalidOperationException($"{what}: empty body.");
        }
    }

    [GeneratedRegex(@"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", RegexOptions.Multiline)]
    private static partial Regex SampleLine();

    [GeneratedRegex(@"^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) ", RegexOptions.Multiline)]
    private static partial Regex TypeLine();
}
