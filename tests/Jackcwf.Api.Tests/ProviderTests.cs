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
