using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Jackcwf.Testing;

namespace Jackcwf.Api.Tests;

/// <summary>OpenAI and Anthropic through their official SDKs, against a server that speaks their wire formats.</summary>
public sealed class ProviderTests(SqliteServiceFixture fx) : IClassFixture<SqliteServiceFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("openai/gpt-4o-mini", "gpt-4o-mini", 0.00135)]
    [InlineData("anthropic/claude-haiku-4-5", "claude-haiku-4-5", 0.011)]
    public async Task StreamsTheProviderAnswerAndStoresUsageAndCost(string model, string providerModel, double expectedCost)
    {
        var u = await fx.CreateUserAsync();
        var c = await u.CreateConversationAsync(new { model, systemPrompt = "You are terse." });
        fx.Fake.Enqueue(new FakeScenario { Text = "Hello from the model, friend.", InputTokens = 1000, OutputTokens = 2000 });
        using var response = await u.StreamAsync(c, new { content = "say hello" });
        var events = await response.ReadAllEventsAsync(Ct);
        Assert.Equal("Hello from the model, friend.", string.Concat(events.Where(e => e.Type == "delta").Select(e => e.Json.GetProperty("text").GetString())));
        var done = events.Single(e => e.Type == "done").Json;
        Assert.Equal("complete", done.GetProperty("status").GetString());
        Assert.Equal(1000, done.GetProperty("usage").GetProperty("inputTokens").GetInt32());
        Assert.Equal(2000, done.GetProperty("usage").GetProperty("outputTokens").GetInt32());
        Assert.Equal((decimal)expectedCost, done.GetProperty("costUsd").GetDecimal());

        var request = fx.Fake.ChatRequests[^1];
        Assert.Equal(providerModel, request.Model);
        Assert.Equal("say hello", request.LastUserText);
        Assert.Contains("You are terse.", request.Body);
        var stored = await u.WaitForMessageAsync(c, done.GetProperty("id").GetGuid(), m => m["costUsd"] is not null);
        Assert.Equal((decimal)expectedCost, stored["costUsd"]!.GetValue<decimal>());
    }

    [Fact]
    public async Task EarlierTurnsOfTheBranchReachTheProvider()
    {
        var u = await fx.CreateUserAsync();
        var c = await u.CreateConversationAsync(new { model = "openai/gpt-4o-mini" });
        fx.Fake.Enqueue(new FakeScenario { Text = "Paris." });
        await u.SendAsync(c, new { content = "capital of France?" });
        fx.Fake.Enqueue(new FakeScenario { Text = "About 2 million." });
        await u.SendAsync(c, new { content = "population?" });
        var body = fx.Fake.ChatRequests[^1].Body;
        Assert.True(body.IndexOf("capital of France?", StringComparison.Ordinal) < body.IndexOf("Paris.", StringComparison.Ordinal));
        Assert.True(body.IndexOf("Paris.", StringComparison.Ordinal) < body.IndexOf("population?", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AGatewayStreamSendsItsHeadersOnceTheProviderAcceptsBeforeTheFirstToken()
    {
        var u = await fx.CreateUserAsync();
        var firstToken = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        fx.Fake.Enqueue(new FakeScenario { Text = "Thought about it.", HoldFirstToken = firstToken.Task });
        using var request = GatewayStream("openai/gpt-4o-mini", "think first");
        // The provider holds its first token until the headers have arrived here: headers sent with
        // the first token would never arrive, and the bound below ends the test instead of hanging it.
        var sending = u.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct);
        HttpResponseMessage response;
        try
        {
            response = await sending.WaitAsync(TimeSpan.FromSeconds(60), Ct);
        }
        catch (TimeoutException)
        {
            firstToken.SetResult();
            throw new Xunit.Sdk.XunitException("The stream's headers waited for the provider's first token.");
        }
        using (response)
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
            Assert.Contains(response.Headers.GetValues("X-Cache").Single(), new[] { "MISS", "BYPASS" });
            firstToken.SetResult();
            var (text, events) = await ReadGatewayStreamAsync(response);
            Assert.Equal("Thought about it.", text);
            Assert.Equal("[DONE]", events[^1]);
        }
    }

    [Fact]
    public async Task AProviderErrorBeforeTheFirstTokenOfAGatewayStreamKeepsItsStatusForTheOfficialSdk()
    {
        var u = await fx.CreateUserAsync();
        var key = (await (await u.Http.PostAsJsonAsync("api/keys", new { name = "sdk" }, Ct)).Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("key").GetString()!;
        var chat = new OpenAI.OpenAIClient(new System.ClientModel.ApiKeyCredential(key), new OpenAI.OpenAIClientOptions
        {
            Endpoint = new Uri(fx.Api.BaseUrl, "v1"),
            RetryPolicy = new System.ClientModel.Primitives.ClientRetryPolicy(maxRetries: 0),
        }).GetChatClient("openai/gpt-4o-mini");
        fx.Fake.Enqueue(FakeScenario.Error(503, "upstream says no"));
        var error = await Assert.ThrowsAsync<System.ClientModel.ClientResultException>(async () =>
        {
            await foreach (var _ in chat.CompleteChatStreamingAsync([new OpenAI.Chat.UserChatMessage("hello?")], cancellationToken: Ct))
            {
            }
        });
        Assert.Equal(503, error.Status);
        Assert.Contains("provider_unavailable", error.Message);

        // A provider that accepted the call and then failed before its first token: the headers went,
        // so the error is the stream's last event, in OpenAI's shape, and no [DONE] follows.
        fx.Fake.Enqueue(new FakeScenario { Text = "never said", StreamErrorAfterChunks = 0, ErrorStatus = 500 });
        using var response = await u.Http.SendAsync(GatewayStream("openai/gpt-4o-mini", "fail after accepting"), HttpCompletionOption.ResponseHeadersRead, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var (text, events) = await ReadGatewayStreamAsync(response);
        Assert.Equal("", text);
        var last = JsonDocument.Parse(events[^1]).RootElement.GetProperty("error");
        Assert.StartsWith("provider_", last.GetProperty("code").GetString());
        Assert.DoesNotContain("[DONE]", events);
    }

    private static HttpRequestMessage GatewayStream(string model, string prompt) => new(HttpMethod.Post, "v1/chat/completions")
    {
        Content = JsonContent.Create(new { model, stream = true, messages = new[] { new { role = "user", content = prompt } } }),
    };

    /// <summary>The text of a /v1 stream's deltas and the data of each of its events.</summary>
    private static async Task<(string Text, List<string> Events)> ReadGatewayStreamAsync(HttpResponseMessage response)
    {
        var events = new List<string>();
        var text = new System.Text.StringBuilder();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(Ct));
        while (await reader.ReadLineAsync(Ct) is { } line)
        {
            if (!line.StartsWith("data: ", StringComparison.Ordinal))
            {
                continue;
            }
            var data = line["data: ".Length..];
            events.Add(data);
            if (data.StartsWith('{') && JsonDocument.Parse(data).RootElement is var chunk && chunk.TryGetProperty("choices", out var choices)
                && choices.GetArrayLength() > 0 && choices[0].GetProperty("delta").TryGetProperty("content", out var content))
            {
                text.Append(content.GetString());
            }
        }
        return (text.ToString(), events);
    }

    [Theory]
    [InlineData("openai/gpt-4o-mini", 503, 503, "provider_unavailable")]
    [InlineData("openai/gpt-4o-mini", 500, 502, "provider_unavailable")]
    [InlineData("anthropic/claude-haiku-4-5", 429, 503, "provider_rate_limited")]
    [InlineData("anthropic/claude-haiku-4-5", 401, 502, "provider_auth")]
    public async Task ProviderErrorBeforeTheFirstTokenBecomesAProblemAndAFailedMessage(string model, int providerStatus, int expectedStatus, string code)
    {
        var u = await fx.CreateUserAsync();
        var c = await u.CreateConversationAsync(new { model });
        fx.Fake.Enqueue(FakeScenario.Error(providerStatus, "upstream says no"));
        var r = await u.Http.PostAsJsonAsync($"api/conversations/{c}/messages", new { content = "hello?" }, Ct);
        Assert.Equal((HttpStatusCode)expectedStatus, r.StatusCode);
        Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
        var problem = await r.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal(code, problem.GetProperty("code").GetString());
        Assert.DoesNotContain("sk-", problem.ToString());
        var messages = (await u.GetConversationAsync(c))["messages"]!.AsArray();
        Assert.Equal("complete", messages[0]!["status"]!.GetValue<string>());
        Assert.Equal("failed", messages[1]!["status"]!.GetValue<string>());

        fx.Fake.Enqueue(FakeScenario.Error(providerStatus, "upstream says no"));
        using var stream = await u.StreamAsync(c, new { content = "and streamed?" });
        var events = await stream.ReadAllEventsAsync(Ct);
        var error = events.Single(e => e.Type == "error").Json;
        Assert.Equal(code, error.GetProperty("code").GetString());
        Assert.Equal("failed", error.GetProperty("messageStatus").GetString());
        Assert.DoesNotContain(events, e => e.Type == "done");
    }

    [Theory]
    [InlineData("openai/gpt-4o-mini")]
    [InlineData("anthropic/claude-haiku-4-5")]
    public async Task AFailureMidStreamKeepsTheTextAndEndsWithAnError(string model)
    {
        var u = await fx.CreateUserAsync();
        var c = await u.CreateConversationAsync(new { model });
        var text = Words.Long(30);
        fx.Fake.Enqueue(new FakeScenario { Text = text, FailAfterChunks = 5, ChunkDelay = TimeSpan.FromMilliseconds(5) });
        using var stream = await u.StreamAsync(c, new { content = "go" });
        var events = await stream.ReadAllEventsAsync(Ct);
        var received = string.Concat(events.Where(e => e.Type == "delta").Select(e => e.Json.GetProperty("text").GetString()));
        Assert.False(string.IsNullOrEmpty(received));
        Assert.StartsWith(received, text);
        var error = events[^1];
        Assert.Equal("error", error.Type);
        Assert.Equal(received, error.Json.GetProperty("content").GetString());
        var id = events.Single(e => e.Type == "start").Json.GetProperty("messageId").GetGuid();
        var stored = await u.WaitForMessageAsync(c, id, m => m["status"]!.GetValue<string>() != "streaming");
        Assert.Equal("failed", stored["status"]!.GetValue<string>());
        Assert.Equal(received, stored["content"]!.GetValue<string>());
    }

    [Fact]
    public async Task ProviderCallsCarryTheOperatorKeyOnly()
    {
        var u = await fx.CreateUserAsync();
        var c = await u.CreateConversationAsync(new { model = "openai/gpt-4o-mini" });
        await u.SendAsync(c, new { content = "key check" });
        var request = fx.Fake.ChatRequests[^1];
        Assert.Equal("sk-test-openai", request.ApiKey);
        Assert.DoesNotContain(request.Headers, h => h.Key.Equals("Cookie", StringComparison.OrdinalIgnoreCase));
    }
}
