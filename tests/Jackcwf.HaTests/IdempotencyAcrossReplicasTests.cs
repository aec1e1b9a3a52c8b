using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Jackcwf.Testing;

namespace Jackcwf.HaTests;

public sealed class IdempotencyAcrossReplicasTests(HaFixture fixture, ITestOutputHelper output)
{
    [Fact]
    public async Task Ten_concurrent_identical_posts_with_one_key_across_replicas_make_one_message_and_one_provider_call()
    {
        await fixture.EnsureWholeAsync();
        var cluster = fixture.Cluster;
        var fake = fixture.Fake;
        var callsBefore = fake.ChatRequests.Count;
        using var http = cluster.CreateClient();
        var (client, _, _) = await HaClient.RegisterAsync(http);
        var conversation = await client.CreateConversationAsync("openai/gpt-4o-mini");
        var token = client.Token;
        var key = Guid.NewGuid().ToString("N");
        const string content = "one question asked ten times at once over three replicas";

        // Ten clients, each on a replica in turn (and every other one through the balancer); half stream.
        var clients = Enumerable.Range(0, 10).Select(i => cluster.CreateClient(i % 2 == 0 ? cluster.Replicas[i % 3].BaseUrl : cluster.BaseUrl)).ToList();
        var firstAnswers = new int[10];
        var sends = clients.Select(async (c, i) =>
        {
            // The client contract: 429 (Retry-After) and 502/503 mean "send the same request again, same key".
            for (var attempt = 1; ; attempt++)
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, $"api/conversations/{conversation}/messages") { Content = JsonContent.Create(new { content }) };
                request.Headers.Add("Idempotency-Key", key);
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
                using var response = i % 2 == 1 ? await c.SendForEventsAsync(request) : await c.SendAsync(request);
                if (attempt == 1)
                {
                    firstAnswers[i] = (int)response.StatusCode;
                }
                if ((int)response.StatusCode is 429 or 502 or 503 && attempt < 20)
                {
                    await Task.Delay(response.Headers.RetryAfter?.Delta ?? TimeSpan.FromSeconds(1));
                    continue;
                }
                if (i % 2 == 1)
                {
                    var events = await response.ReadAllEventsAsync();
                    var done = events.Single(e => e.Event == "done");
                    return ((int)response.StatusCode, done.Json.GetProperty("id").GetGuid(), done.Json.GetProperty("content").GetString(), attempt);
                }
                var body = await response.Content.ReadAsStringAsync();
                Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {body}");
                using var json = JsonDocument.Parse(body);
                var assistant = json.RootElement.GetProperty("assistantMessage");
                return ((int)response.StatusCode, assistant.GetProperty("id").GetGuid(), assistant.GetProperty("content").GetString(), attempt);
            }
        }).ToList();
        var results = await Task.WhenAll(sends);
        foreach (var c in clients)
        {
            c.Dispose();
        }

        var stored = await Ledger.LoadAsync(cluster, [conversation]);
        Figures.Report(output, "Ten concurrent identical POSTs, one Idempotency-Key, three replicas", [
            $"first answers: {string.Join(", ", firstAnswers)}; final answers: {string.Join(", ", results.Select(r => r.Item1))} after {results.Sum(r => r.Item4)} requests; distinct assistant ids: {results.Select(r => r.Item2).Distinct().Count()}",
            $"messages stored: {stored.Count(m => m.Role == "user")} user, {stored.Count(m => m.Role == "assistant")} assistant; provider calls: {fake.ChatRequests.Count - callsBefore}",
        ]);
        Assert.All(results, r => Assert.Equal(200, r.Item1));
        Assert.Single(results.Select(r => r.Item2).Distinct());
        Assert.All(results, r => Assert.Equal(content, r.Item3));
        Assert.Single(stored, m => m.Role == "user");
        Assert.Single(stored, m => m.Role == "assistant");
        Assert.Equal(1, fake.ChatRequests.Count - callsBefore);
    }

    [Fact]
    public async Task Stop_sent_to_another_replica_reaches_the_one_generating()
    {
        await fixture.EnsureWholeAsync();
        var cluster = fixture.Cluster;
        using var owner = cluster.CreateClient(cluster.Replicas[0].BaseUrl);
        var (client, _, _) = await HaClient.RegisterAsync(owner);
        var token = client.Token;
        var conversation = await client.CreateConversationAsync();
        var content = string.Join(' ', Enumerable.Range(1, 100).Select(i => $"word{i}"));

        using var request = new HttpRequestMessage(HttpMethod.Post, $"api/conversations/{conversation}/messages") { Content = JsonContent.Create(new { content }) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await owner.SendForEventsAsync(request);
        Guid? assistant = null;
        string? final = null, status = null;
        var deltas = 0;
        var stopAnswer = HttpStatusCode.OK;
        var stopwatch = System.Diagnostics.Stopwatch.StartNew();
        TimeSpan stoppedAfter = TimeSpan.Zero;
        await foreach (var e in response.ReadEventsAsync())
        {
            if (e.Event == "start")
            {
                assistant = e.Json.GetProperty("messageId").GetGuid();
            }
            else if (e.Event == "delta" && ++deltas == 3)
            {
                using var other = cluster.CreateClient(cluster.Replicas[2].BaseUrl);
                using var stop = new HttpRequestMessage(HttpMethod.Post, $"api/conversations/{conversation}/messages/{assistant}/stop");
                stop.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
                stopAnswer = (await other.SendAsync(stop)).StatusCode;
                stopwatch.Restart();
            }
            else if (e.Event is "done" or "error")
            {
                final = e.Event;
                status = e.Json.GetProperty(e.Event == "done" ? "status" : "messageStatus").GetString();
                stoppedAfter = stopwatch.Elapsed;
                break;
            }
        }
        Figures.Report(output, "Stop through another replica", [
            $"stop answered {(int)stopAnswer}; the stream ended with {final} ({status}) {stoppedAfter.TotalMilliseconds:F0} ms after the stop, after {deltas} deltas of 100",
        ]);
        Assert.Equal(HttpStatusCode.Accepted, stopAnswer);
        Assert.Equal("done", final);
        Assert.Equal("stopped", status);
        Assert.True(deltas < 100, "every delta arrived: the stop did not reach the generating replica");
    }
}
