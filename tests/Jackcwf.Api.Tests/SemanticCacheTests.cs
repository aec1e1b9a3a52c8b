using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace Jackcwf.Api.Tests;

/// <summary>The service with the semantic response cache and the default (local) embedding model.</summary>
public sealed class SemanticCacheFixture : ServiceFixture
{
    protected override Task<IReadOnlyDictionary<string, string?>> DatabaseAsync() =>
        Task.FromResult<IReadOnlyDictionary<string, string?>>(new Dictionary<string, string?> { ["DATABASE_URL"] = null });

    protected override IReadOnlyDictionary<string, string?> ExtraEnvironment => new Dictionary<string, string?>
    {
        ["RESPONSE_CACHE"] = "semantic",
        ["SEMANTIC_CACHE_THRESHOLD"] = "0.8",
    };
}

public sealed class SemanticCacheTests(SemanticCacheFixture fx) : IClassFixture<SemanticCacheFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<(string Cache, string? Answer)> AskAsync(TestUser u, string prompt)
    {
        using var r = await u.Http.PostAsJsonAsync("v1/chat/completions",
            new { model = "openai/gpt-4o-mini", messages = new[] { new { role = "system", content = "Answer briefly." }, new { role = "user", content = prompt } } }, Ct);
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        var body = await r.Content.ReadFromJsonAsync<JsonElement>(Ct);
        return (r.Headers.GetValues("X-Cache").Single(), body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
    }

    [Fact]
    public async Task AParaphraseIsAnsweredFromTheCacheAndAnUnrelatedPromptIsNot()
    {
        var u = await fx.CreateUserAsync();
        var before = fx.Fake.ChatRequests.Count;
        var first = await AskAsync(u, "What is the capital city of France?");
        var paraphrase = await AskAsync(u, "What's the capital of France?");
        Assert.Equal(("MISS", "HIT"), (first.Cache, paraphrase.Cache));
        // The fake echoes the prompt: the paraphrase got the first question's answer.
        Assert.Equal(first.Answer, paraphrase.Answer);
        Assert.Equal(1, fx.Fake.ChatRequests.Count - before);

        var unrelated = await AskAsync(u, "How long should sourdough bread proof?");
        Assert.Equal("MISS", unrelated.Cache);
        Assert.Equal("How long should sourdough bread proof?", unrelated.Answer);

        // Never across users.
        var other = await fx.CreateUserAsync();
        Assert.Equal("MISS", (await AskAsync(other, "What's the capital of France?")).Cache);
        Assert.Equal(3, fx.Fake.ChatRequests.Count - before);
    }
}
