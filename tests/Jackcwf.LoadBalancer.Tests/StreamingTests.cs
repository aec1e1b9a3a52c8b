using System.Diagnostics;
using System.Net;

namespace Jackcwf.LoadBalancer.Tests;

public sealed class StreamingTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task SseEventsPassThroughBeforeTheReplicaFinishes()
    {
        await using var replica = await FakeReplica.StartAsync("streamer");
        await using var lb = await Balancer.StartAsync([replica.Url]);
        using var client = lb.Client();

        using var response = await client.GetAsync("sse", HttpCompletionOption.ResponseHeadersRead, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(Ct));

        var first = await ReadEventAsync(reader).WaitAsync(TimeSpan.FromSeconds(10), Ct);
        Assert.Equal("event: delta\nid: 1\ndata: {\"text\":\"first from streamer\"}", first);
        Assert.False(replica.StreamFinished, "the first event arrived only after the replica finished: the balancer buffered");

        replica.ReleaseStream.SetResult();
        Assert.Equal("event: done\nid: 2\ndata: {}", await ReadEventAsync(reader).WaitAsync(TimeSpan.FromSeconds(10), Ct));
        Assert.Null(await reader.ReadLineAsync(Ct));
    }

    [Fact]
    public async Task SilentSseStreamWithKeepAliveCommentsStaysOpenForMoreThan30Seconds()
    {
        await using var replica = await FakeReplica.StartAsync("slow");
        await using var lb = await Balancer.StartAsync([replica.Url]);
        using var client = lb.Client();
        var clock = Stopwatch.StartNew();

        using var response = await client.GetAsync("sse-silent?seconds=32&every=8", HttpCompletionOption.ResponseHeadersRead, Ct);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(Ct));
        var events = new List<string>();
        while (await ReadEventAsync(reader) is { } sseEvent)
        {
            events.Add(sseEvent);
        }

        Assert.Equal(["event: start\ndata: {}", ": keep-alive", ": keep-alive", ": keep-alive", ": keep-alive", "event: done\ndata: {}"], events);
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(32), $"the stream ended after {clock.Elapsed.TotalSeconds:F1} s");
    }

    /// <summary>Reads one SSE block (lines up to a blank line); null at the end of the stream.</summary>
    private static async Task<string?> ReadEventAsync(StreamReader reader)
    {
        var lines = new List<string>();
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line.Length == 0)
            {
                return string.Join('\n', lines);
            }
            lines.Add(line);
        }
        return lines.Count > 0 ? string.Join('\n', lines) : null;
    }
}
