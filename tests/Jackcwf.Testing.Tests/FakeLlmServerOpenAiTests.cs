using System.ClientModel;
using Microsoft.Extensions.AI;
using OpenAI;

namespace Jackcwf.Testing.Tests;

public sealed class FakeLlmServerOpenAiTests : IAsyncLifetime
{
    private FakeLlmServer _fake = null!;

    public async ValueTask InitializeAsync() => _fake = await FakeLlmServer.StartAsync();

    public async ValueTask DisposeAsync() => await _fake.DisposeAsync();

    // Exactly how the service builds its OpenAI client; retries off so one queued scenario is one attempt.
    private IChatClient Client(string key = "sk-test-openai", string model = "gpt-4o-mini") =>
        new OpenAIClient(new ApiKeyCredential(key), new OpenAIClientOptions { Endpoint = _fake.OpenAiBaseUrl, RetryPolicy = new System.ClientModel.Primitives.ClientRetryPolicy(0) })
            .GetChatClient(model).AsIChatClient();

    [Fact]
    public async Task StreamingAnswerEchoesTheLastUserMessageInWordChunksWithUsage()
    {
        var updates = new List<ChatResponseUpdate>();
        await foreach (var update in Client().GetStreamingResponseAsync(
            [new(ChatRole.System, "be brief"), new(ChatRole.User, "first question"), new(ChatRole.Assistant, "ok"), new(ChatRole.User, "hello brave  new world")],
            cancellationToken: TestContext.Current.CancellationToken))
        {
            updates.Add(update);
        }

        var texts = updates.Select(u => u.Text).Where(t => t.Length > 0).ToList();
        Assert.Equal(["hello", " brave", "  new", " world"], texts);
        var usage = updates.SelectMany(u => u.Contents).OfType<UsageContent>().Single().Details;
        Assert.Equal(9, usage.InputTokenCount);
        Assert.Equal(4, usage.OutputTokenCount);
        Assert.All(updates.Select(u => u.FinishReason).OfType<ChatFinishReason>(), f => Assert.Equal(ChatFinishReason.Stop, f));
        Assert.Contains(updates, u => u.FinishReason == ChatFinishReason.Stop);
    }

    [Fact]
    public async Task NonStreamingAnswerCarriesTextAndUsage()
    {
        _fake.Enqueue(new FakeScenario { Text = "Paris is the capital.", InputTokens = 12, OutputTokens = 5 });

        var response = await Client().GetResponseAsync("capital of France?", cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal("Paris is the capital.", response.Text);
        Assert.Equal(12, response.Usage?.InputTokenCount);
        Assert.Equal(5, response.Usage?.OutputTokenCount);
        Assert.Equal("gpt-4o-mini", response.ModelId);
    }

    [Fact]
    public async Task RequestIsRecordedWithPathModelApiKeyAndUserText()
    {
        await Client(key: "sk-recorded", model: "gpt-4o").GetResponseAsync("remember me", cancellationToken: TestContext.Current.CancellationToken);

        var request = Assert.Single(_fake.Requests);
        Assert.Equal("/v1/chat/completions", request.Path);
        Assert.Equal(FakeLlmProvider.OpenAI, request.Provider);
        Assert.Equal("gpt-4o", request.Model);
        Assert.Equal("Bearer sk-recorded", request.Header("Authorization"));
        Assert.Equal("sk-recorded", request.ApiKey);
        Assert.Equal("remember me", request.LastUserText);
        Assert.Contains("\"remember me\"", request.Body);
        Assert.Equal(1, _fake.RequestCount);
    }

    [Fact]
    public async Task ErrorBeforeFirstTokenSurfacesAsExceptionWithStatus()
    {
        _fake.Enqueue(FakeScenario.Error(429, "slow down"));

        var error = await Assert.ThrowsAsync<ClientResultException>(async () =>
        {
            await foreach (var _ in Client().GetStreamingResponseAsync("hi", cancellationToken: TestContext.Current.CancellationToken))
            {
            }
        });

        Assert.Equal(429, error.Status);
        Assert.Contains("slow down", error.Message);
        // The queued scenario applied once; the next request gets the default echo again.
        var after = await Client().GetResponseAsync("back to normal", cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal("back to normal", after.Text);
    }

    [Fact]
    public async Task MidStreamFailureSurfacesAfterSomeText()
    {
        _fake.Enqueue(new FakeScenario { Text = "one two three four five", FailAfterChunks = 2 });
        var received = new List<string>();

        var error = await Record.ExceptionAsync(async () =>
        {
            await foreach (var update in Client().GetStreamingResponseAsync("go", cancellationToken: TestContext.Current.CancellationToken))
            {
                received.Add(update.Text);
            }
        });

        Assert.NotNull(error);
        Assert.Equal("one two", string.Concat(received));
    }

    [Fact]
    public async Task ErrorEventInsideTheStreamEndsItWithoutFinishReasonOrUsage()
    {
        // What the OpenAI SDK really does with an in-stream {"error":...} line: no exception, the stream
        // just stops, so a caller must treat a missing finish reason as an incomplete answer.
        _fake.Enqueue(new FakeScenario { Text = "one two three", StreamErrorAfterChunks = 1, ErrorMessage = "The server had an error" });
        var updates = new List<ChatResponseUpdate>();

        await foreach (var update in Client().GetStreamingResponseAsync("go", cancellationToken: TestContext.Current.CancellationToken))
        {
            updates.Add(update);
        }

        Assert.Equal("one", string.Concat(updates.Select(u => u.Text)));
        Assert.DoesNotContain(updates, u => u.FinishReason is not null);
        Assert.DoesNotContain(updates.SelectMany(u => u.Contents), c => c is UsageContent);
    }

    [Fact]
    public async Task SlowFirstTokenIsObservedByTheClient()
    {
        _fake.Enqueue(new FakeScenario { Text = "late", FirstTokenDelay = TimeSpan.FromMilliseconds(600) });
        var started = System.Diagnostics.Stopwatch.StartNew();
        TimeSpan? firstToken = null;

        await foreach (var update in Client().GetStreamingResponseAsync("x", cancellationToken: TestContext.Current.CancellationToken))
        {
            if (update.Text.Length > 0)
            {
                firstToken ??= started.Elapsed;
            }
        }

        Assert.NotNull(firstToken);
        Assert.InRange(firstToken.Value, TimeSpan.FromMilliseconds(550), TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task ModelsAreListed()
    {
        var client = new OpenAIClient(new ApiKeyCredential("sk"), new OpenAIClientOptions { Endpoint = _fake.OpenAiBaseUrl });

        var models = await client.GetOpenAIModelClient().GetModelsAsync(TestContext.Current.CancellationToken);

        Assert.Contains(models.Value, m => m.Id == "gpt-4o-mini");
    }
}
