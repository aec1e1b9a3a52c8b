using Anthropic;
using Anthropic.Exceptions;
using Microsoft.Extensions.AI;

namespace Jackcwf.Testing.Tests;

public sealed class FakeLlmServerAnthropicTests : IAsyncLifetime
{
    private FakeLlmServer _fake = null!;

    public async ValueTask InitializeAsync() => _fake = await FakeLlmServer.StartAsync();

    public async ValueTask DisposeAsync() => await _fake.DisposeAsync();

    private IChatClient Client(string key = "sk-ant-test", string model = "claude-sonnet-4-5") =>
        new AnthropicClient { ApiKey = key, BaseUrl = _fake.AnthropicBaseUrl.ToString(), MaxRetries = 0 }.AsIChatClient(model, 1024);

    [Fact]
    public async Task StreamingAnswerEchoesTheLastUserMessageWithUsage()
    {
        var updates = new List<ChatResponseUpdate>();
        await foreach (var update in Client().GetStreamingResponseAsync(
            [new(ChatRole.System, "be brief"), new(ChatRole.User, "hello brave new world")],
            cancellationToken: TestContext.Current.CancellationToken))
        {
            updates.Add(update);
        }

        var texts = updates.Select(u => u.Text).Where(t => t.Length > 0).ToList();
        Assert.Equal(["hello", " brave", " new", " world"], texts);
        var usage = updates.SelectMany(u => u.Contents).OfType<UsageContent>().Select(u => u.Details).ToList();
        Assert.Contains(usage, u => u.InputTokenCount == 6);
        Assert.Contains(usage, u => u.OutputTokenCount == 4);
    }

    [Fact]
    public async Task NonStreamingAnswerCarriesTextAndUsage()
    {
        _fake.Enqueue(new FakeScenario { Text = "Bonjour tout le monde", InputTokens = 7, OutputTokens = 3 });

        var response = await Client().GetResponseAsync("say hi in French", cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal("Bonjour tout le monde", response.Text);
        Assert.Equal(7, response.Usage?.InputTokenCount);
        Assert.Equal(3, response.Usage?.OutputTokenCount);
    }

    [Fact]
    public async Task RequestIsRecordedWithTheApiKey()
    {
        await Client(key: "sk-ant-recorded", model: "claude-haiku-4-5").GetResponseAsync("who am I", cancellationToken: TestContext.Current.CancellationToken);

        var request = Assert.Single(_fake.ChatRequests);
        Assert.Equal("/v1/messages", request.Path);
        Assert.Equal(FakeLlmProvider.Anthropic, request.Provider);
        Assert.Equal("claude-haiku-4-5", request.Model);
        Assert.Equal("sk-ant-recorded", request.ApiKey);
        Assert.Equal("who am I", request.LastUserText);
        Assert.NotNull(request.Header("anthropic-version"));
    }

    [Fact]
    public async Task ErrorBeforeFirstTokenSurfacesAsExceptionWithStatus()
    {
        _fake.Enqueue(FakeScenario.Error(529, "Overloaded"));

        var error = await Assert.ThrowsAnyAsync<AnthropicApiException>(async () =>
        {
            await foreach (var _ in Client().GetStreamingResponseAsync("hi", cancellationToken: TestContext.Current.CancellationToken))
            {
            }
        });

        Assert.Equal(529, (int)error.StatusCode);
        Assert.Contains("Overloaded", error.Message);
    }

    [Fact]
    public async Task MidStreamFailureSurfacesAfterSomeText()
    {
        _fake.Enqueue(new FakeScenario { Text = "alpha beta gamma delta", FailAfterChunks = 3 });
        var received = new List<string>();

        var error = await Record.ExceptionAsync(async () =>
        {
            await foreach (var update in Client().GetStreamingResponseAsync("go", cancellationToken: TestContext.Current.CancellationToken))
            {
                received.Add(update.Text);
            }
        });

        Assert.NotNull(error);
        Assert.Equal("alpha beta gamma", string.Concat(received));
    }

    [Fact]
    public async Task ErrorEventInsideTheStreamSurfacesAfterSomeText()
    {
        _fake.Enqueue(new FakeScenario { Text = "alpha beta gamma", StreamErrorAfterChunks = 2, ErrorMessage = "Overloaded" });
        var received = new List<string>();

        var error = await Record.ExceptionAsync(async () =>
        {
            await foreach (var update in Client().GetStreamingResponseAsync("go", cancellationToken: TestContext.Current.CancellationToken))
            {
                received.Add(update.Text);
            }
        });

        Assert.Equal("alpha beta", string.Concat(received));
        Assert.NotNull(error);
        Assert.Contains("Overloaded", error.ToString());
    }

    [Fact]
    public async Task SlowFirstTokenIsObservedByTheClient()
    {
        _fake.Enqueue(new FakeScenario { Text = "late reply", FirstTokenDelay = TimeSpan.FromMilliseconds(600), ChunkDelay = TimeSpan.FromMilliseconds(50) });
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
    public async Task KeySentAsXApiKeyIsAcceptedToo()
    {
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(_fake.AnthropicBaseUrl, "v1/messages"))
        {
            Content = new StringContent("""{"model":"claude-x","max_tokens":10,"messages":[{"role":"user","content":"ping"}]}""", System.Text.Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("x-api-key", "sk-ant-header");
        _fake.RequiredApiKey = "sk-ant-header";

        using var response = await http.SendAsync(request, TestContext.Current.CancellationToken);

        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("\"text\":\"ping\"", await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        Assert.Equal("sk-ant-header", _fake.Requests.Single().ApiKey);
    }
}
