using System.Text;

namespace Jackcwf.Testing.Tests;

public sealed class SseClientTests
{
    private static async Task<List<SseEvent>> ParseAsync(string wire)
    {
        var events = new List<SseEvent>();
        await foreach (var e in SseClient.ReadEventsAsync(new MemoryStream(Encoding.UTF8.GetBytes(wire)), TestContext.Current.CancellationToken))
        {
            events.Add(e);
        }

        return events;
    }

    [Fact]
    public async Task EventsIdsDataAndCommentsAreParsedSeparately()
    {
        var events = await ParseAsync(
            "event: delta\nid: 5-1\ndata: {\"text\":\"hi\"}\n\n" +
            ": keep-alive\n\n" +
            "data: line one\r\ndata: line two\r\n\r\n" +
            "event: done\nretry: 1000\ndata:{}\n\n" +
            "event: cut\ndata: never terminated\n");

        Assert.Equal(4, events.Count);
        Assert.Equal(("delta", "5-1"), (events[0].Event, events[0].Id));
        Assert.Equal("hi", events[0].Json.GetProperty("text").GetString());
        Assert.Equal("event: delta\nid: 5-1\ndata: {\"text\":\"hi\"}\n", events[0].Raw);
        Assert.True(events[1].IsCommentOnly);
        Assert.Equal(["keep-alive"], events[1].Comments);
        Assert.Equal(("message", "line one\nline two"), (events[2].Type, events[2].Data));
        Assert.Equal(("done", 1000, "{}"), (events[3].Event, events[3].Retry, events[3].Data));
    }

    [Fact]
    public async Task AnthropicStreamOfTheFakeHasTheRealEventSequence()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeLlmServer.StartAsync(ct);
        using var http = new HttpClient { BaseAddress = fake.AnthropicBaseUrl };
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/messages")
        {
            Content = new StringContent("""{"model":"claude-x","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"two words"}]}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("x-api-key", "k");

        using var response = await http.SendForEventsAsync(request, ct);
        var events = await response.ReadAllEventsAsync(ct);

        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(
            ["message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta", "content_block_stop", "message_delta", "message_stop"],
            events.Select(e => e.Type));
        Assert.All(events, e => Assert.Equal(e.Type, e.Json.GetProperty("type").GetString()));
        Assert.Equal(2, events.Single(e => e.Type == "message_start").Json.GetProperty("message").GetProperty("usage").GetProperty("input_tokens").GetInt32());
        var delta = events.Single(e => e.Type == "message_delta").Json;
        Assert.Equal("end_turn", delta.GetProperty("delta").GetProperty("stop_reason").GetString());
        Assert.Equal(2, delta.GetProperty("usage").GetProperty("output_tokens").GetInt32());
    }

    [Fact]
    public async Task OpenAiStreamOfTheFakeEndsWithUsageThenDone()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeLlmServer.StartAsync(ct);
        using var http = new HttpClient { BaseAddress = fake.BaseUrl };
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions")
        {
            Content = new StringContent("""{"model":"gpt-x","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"a b c"}]}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new("Bearer", "sk");

        using var response = await http.SendForEventsAsync(request, ct);
        var events = await response.ReadAllEventsAsync(ct);

        Assert.All(events, e => Assert.Null(e.Event));
        Assert.Equal("[DONE]", events[^1].Data);
        var usage = events[^2].Json;
        Assert.Equal(0, usage.GetProperty("choices").GetArrayLength());
        Assert.Equal(3, usage.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal("stop", events[^3].Json.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal("a b c", string.Concat(events.SkipLast(2).Select(e => e.Json.GetProperty("choices")[0].GetProperty("delta")).Select(d => d.TryGetProperty("content", out var c) ? c.GetString() : "")));
    }

    [Fact]
    public async Task OpenAiStreamErrorIsAnErrorObjectOnADataLine()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeLlmServer.StartAsync(ct);
        fake.Enqueue(new FakeScenario { Text = "a b", StreamErrorAfterChunks = 1, ErrorMessage = "boom" });
        using var http = new HttpClient { BaseAddress = fake.BaseUrl };
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions")
        {
            Content = new StringContent("""{"model":"gpt-x","stream":true,"messages":[{"role":"user","content":"x"}]}""", Encoding.UTF8, "application/json"),
        };

        using var response = await http.SendForEventsAsync(request, ct);
        var events = await response.ReadAllEventsAsync(ct);

        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        var error = events[^1].Json.GetProperty("error");
        Assert.Equal("boom", error.GetProperty("message").GetString());
        Assert.Equal("server_error", error.GetProperty("type").GetString());
        Assert.DoesNotContain(events, e => e.Data == "[DONE]");
    }
}
