using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using Microsoft.Extensions.AI;
using OpenAI;

namespace Jackcwf.Testing.Tests;

public sealed class FakeLlmServerBehaviourTests
{
    [Theory]
    [InlineData("hello world", new[] { "hello", " world" })]
    [InlineData("  leading and trailing  ", new[] { "  leading", " and", " trailing  " })]
    [InlineData("line\nbreak", new[] { "line", "\nbreak" })]
    [InlineData("   ", new[] { "   " })]
    [InlineData("", new string[0])]
    public void ChunksAreWordSizedAndConcatenateToTheText(string text, string[] expected)
    {
        var chunks = FakeScenario.SplitIntoChunks(text);

        Assert.Equal(expected, chunks);
        Assert.Equal(text, string.Concat(chunks));
    }

    [Fact]
    public async Task HangingRequestEndsWhenTheClientCancels()
    {
        await using var fake = await FakeLlmServer.StartAsync(TestContext.Current.CancellationToken);
        fake.Default = new FakeScenario { Hang = true };
        var client = new OpenAIClient(new ApiKeyCredential("sk"), new OpenAIClientOptions { Endpoint = fake.OpenAiBaseUrl, RetryPolicy = new ClientRetryPolicy(0) })
            .GetChatClient("gpt-4o-mini").AsIChatClient();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var call = client.GetResponseAsync("anyone there?", cancellationToken: cts.Token);
        // Cancel only once the server holds the request (a cold, busy machine can take longer than any fixed delay).
        await fake.WaitForChatRequestsAsync(1, TimeSpan.FromSeconds(60));
        await Task.Delay(200, TestContext.Current.CancellationToken);
        Assert.False(call.IsCompleted, "the hanging request answered");
        var cancelled = System.Diagnostics.Stopwatch.StartNew();
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);

        Assert.InRange(cancelled.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(10));
        Assert.Single(fake.ChatRequests);
    }

    [Fact]
    public async Task QueuedScenariosApplyInOrderThenTheDefault()
    {
        await using var fake = await FakeLlmServer.StartAsync(TestContext.Current.CancellationToken);
        fake.Default = FakeScenario.Answer("default");
        fake.Enqueue(FakeScenario.Answer("first"));
        fake.Enqueue(FakeScenario.Answer("second"), times: 2);
        var client = new OpenAIClient(new ApiKeyCredential("sk"), new OpenAIClientOptions { Endpoint = fake.OpenAiBaseUrl })
            .GetChatClient("gpt-4o-mini").AsIChatClient();

        var answers = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            answers.Add((await client.GetResponseAsync("q", cancellationToken: TestContext.Current.CancellationToken)).Text);
        }

        Assert.Equal(["first", "second", "second", "default", "default"], answers);
        fake.Reset();
        Assert.Equal(0, fake.RequestCount);
        Assert.Equal("echo me", (await client.GetResponseAsync("echo me", cancellationToken: TestContext.Current.CancellationToken)).Text);
    }

    [Fact]
    public async Task SdkRetriesOfAnErrorAreServedByTheDefault()
    {
        await using var fake = await FakeLlmServer.StartAsync(TestContext.Current.CancellationToken);
        fake.Enqueue(FakeScenario.Error(503, "briefly down") with { RetryAfter = TimeSpan.FromMilliseconds(10) });
        // The SDK's own retry policy is left on: its second attempt gets the default echo.
        var client = new OpenAIClient(new ApiKeyCredential("sk"), new OpenAIClientOptions { Endpoint = fake.OpenAiBaseUrl })
            .GetChatClient("gpt-4o-mini").AsIChatClient();

        var response = await client.GetResponseAsync("survived", cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal("survived", response.Text);
        Assert.Equal(2, fake.ChatRequests.Count);
    }

    [Fact]
    public async Task WrongApiKeyGetsTheProviderShaped401()
    {
        await using var fake = await FakeLlmServer.StartAsync(TestContext.Current.CancellationToken);
        fake.RequiredApiKey = "sk-right";
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(fake.OpenAiBaseUrl + "/chat/completions"))
        {
            Content = new StringContent("""{"model":"m","messages":[{"role":"user","content":"x"}]}""", System.Text.Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new("Bearer", "sk-wrong");

        using var response = await http.SendAsync(request, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        using var body = System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        Assert.Equal("invalid_api_key", body.RootElement.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal("invalid_request_error", body.RootElement.GetProperty("error").GetProperty("type").GetString());
    }

    [Fact]
    public async Task ProviderEnvironmentPointsTheServiceVariablesAtTheFake()
    {
        await using var fake = await FakeLlmServer.StartAsync(TestContext.Current.CancellationToken);

        var environment = fake.ProviderEnvironment(openAiKey: "sk-o", includeOllama: true);

        Assert.Equal($"http://127.0.0.1:{fake.Port}/v1", environment["OPENAI_BASE_URL"]);
        Assert.Equal($"http://127.0.0.1:{fake.Port}/", environment["ANTHROPIC_BASE_URL"]);
        Assert.Equal(environment["OPENAI_BASE_URL"], environment["OLLAMA_BASE_URL"]);
        Assert.Equal("sk-o", environment["OPENAI_API_KEY"]);
        Assert.False(string.IsNullOrEmpty(environment["ANTHROPIC_API_KEY"]));
    }
}
