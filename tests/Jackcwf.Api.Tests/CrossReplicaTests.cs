using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Jackcwf.Testing;

namespace Jackcwf.Api.Tests;

/// <summary>Two replicas sharing PostgreSQL and Redis: limits and revocations hold across them.</summary>
public sealed class TwoReplicasFixture : IAsyncLifetime
{
    public const int KeyPerMinute = 5;
    public const int Streams = 2;
    private TestDatabase? _db;
    private TestRedisDatabase? _redis;

    public const int FailedSignInsPerIp = 3;
    public const int FailedSignInsPerAccount = 6;

    public ApiProcess A { get; private set; } = null!;
    public ApiProcess B { get; private set; } = null!;

    /// <summary>The first account, the administrator, signed in on replica A.</summary>
    public HttpClient Admin { get; private set; } = null!;

    public string DatabaseUrl => _db!.Url;

    public string DatabaseConnectionString => _db!.ConnectionString;

    public async ValueTask InitializeAsync()
    {
        _db = await TestPostgres.CreateDatabaseAsync("replicas");
        _redis = await TestRedis.CreateDatabaseAsync();
        var env = new Dictionary<string, string?>
        {
            ["DATABASE_URL"] = _db.Url,
            ["REDIS_URL"] = _redis.Url,
            ["RATE_LIMIT_KEY_PER_MINUTE"] = KeyPerMinute.ToString(),
            ["MAX_CONCURRENT_GENERATIONS"] = "1",
            ["MAX_CONCURRENT_STREAMS"] = Streams.ToString(),
            ["DEMO_CHUNK_DELAY_MS"] = "40",
            ["SHUTDOWN_DRAIN_DELAY_SECONDS"] = "0",
            ["AUTH_FAILED_SIGNINS_PER_IP"] = FailedSignInsPerIp.ToString(),
            ["AUTH_FAILED_SIGNINS_PER_ACCOUNT"] = FailedSignInsPerAccount.ToString(),
            ["RESPONSE_CACHE"] = "exact",
        };
        A = await ApiProcess.StartAsync(new ApiProcessOptions { Environment = env });
        B = await ApiProcess.StartAsync(new ApiProcessOptions { Environment = env });
        Admin = A.CreateClient();
        const string email = "admin@replicas.example", password = "Admin-Passw0rd";
        Assert.True((await Admin.PostAsJsonAsync("api/auth/register", new { email, password })).IsSuccessStatusCode);
        var tokens = await (await Admin.PostAsJsonAsync("api/auth/login", new { email, password })).Content.ReadFromJsonAsync<JsonElement>();
        Admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", tokens.GetProperty("accessToken").GetString());
    }

    public async ValueTask DisposeAsync()
    {
        if (A is not null)
        {
            await A.DisposeAsync();
        }
        if (B is not null)
        {
            await B.DisposeAsync();
        }
        if (_redis is not null)
        {
            await _redis.DisposeAsync();
        }
        if (_db is not null)
        {
            await _db.DisposeAsync();
        }
    }
}

public sealed partial class CrossReplicaTests(TwoReplicasFixture fx) : IClassFixture<TwoReplicasFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<Guid> NewConversationAsync(HttpClient client) =>
        (await (await client.PostAsJsonAsync("api/conversations", new { }, Ct)).Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetGuid();

    /// <summary>Sends <paramref name="text"/> as a message whose answer streams as Server-Sent Events.</summary>
    private static async Task<HttpResponseMessage> SendStreamedMessageAsync(HttpClient client, Guid conversation, string text)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"api/conversations/{conversation}/messages") { Content = JsonContent.Create(new { content = text }) };
        return await client.SendForEventsAsync(request, Ct);
    }

    /// <summary>Sends <paramref name="text"/> as a streamed message and reads its events up to the start event, which names the answer.</summary>
    private static async Task<(HttpResponseMessage Stream, IAsyncEnumerator<SseEvent> Events, Guid Assistant)> StartStreamedMessageAsync(
        HttpClient client, Guid conversation, string text)
    {
        var stream = await SendStreamedMessageAsync(client, conversation, text);
        var events = stream.ReadEventsAsync(Ct).GetAsyncEnumerator(Ct);
        while (await events.MoveNextAsync())
        {
            if (events.Current.Type == "start")
            {
                return (stream, events, events.Current.Json.GetProperty("messageId").GetGuid());
            }
        }
        throw new InvalidOperationException("The stream ended before its start event.");
    }

    private async Task<(HttpClient OnA, HttpClient OnB, HttpClient KeyOnA, HttpClient KeyOnB, Guid KeyId)> UserWithKeyAsync()
    {
        var email = $"r{Guid.NewGuid():N}@example.com";
        const string password = "Replica-Passw0rd";
        var a = fx.A.CreateClient();
        Assert.True((await a.PostAsJsonAsync("api/auth/register", new { email, password }, Ct)).IsSuccessStatusCode);
        var tokens = await (await a.PostAsJsonAsync("api/auth/login", new { email, password }, Ct)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        var token = tokens.GetProperty("accessToken").GetString();
        a.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        // A token minted by replica A works on replica B (shared Data Protection keys).
        var b = fx.B.CreateClient();
        b.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        var created = await (await a.PostAsJsonAsync("api/keys", new { name = "shared" }, Ct)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        var key = created.GetProperty("key").GetString();
        var ka = fx.A.CreateClient();
        ka.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        var kb = fx.B.CreateClient();
        kb.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return (a, b, ka, kb, created.GetProperty("id").GetGuid());
    }

    [Fact]
    public async Task KeyRateLimitCountsRequestsOnEveryReplica()
    {
        var (_, _, ka, kb, _) = await UserWithKeyAsync();
        for (var i = 0; i < TwoReplicasFixture.KeyPerMinute; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await (i % 2 == 0 ? ka : kb).GetAsync("v1/models", Ct)).StatusCode);
        }
        Assert.Equal(HttpStatusCode.TooManyRequests, (await kb.GetAsync("v1/models", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, (await ka.GetAsync("v1/models", Ct)).StatusCode);
    }

    [Fact]
    public async Task AKeyRevokedOnOneReplicaIsRefusedOnTheOtherAtOnce()
    {
        var (onA, onB, _, kb, keyId) = await UserWithKeyAsync();
        Assert.Equal(HttpStatusCode.OK, (await onB.GetAsync("api/me", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await kb.GetAsync("api/me", Ct)).StatusCode); // cached on B now
        Assert.Equal(HttpStatusCode.NoContent, (await onA.DeleteAsync($"api/keys/{keyId}", Ct)).StatusCode);
        // The revocation travels by Redis pub/sub (well under a millisecond on an idle host); allow a loaded machine 2 s.
        var watch = System.Diagnostics.Stopwatch.StartNew();
        HttpStatusCode status;
        while ((status = (await kb.GetAsync("api/me", Ct)).StatusCode) == HttpStatusCode.OK && watch.Elapsed < TimeSpan.FromSeconds(2))
        {
            await Task.Delay(20, Ct);
        }
        Assert.Equal(HttpStatusCode.Unauthorized, status);
        TestContext.Current.SendDiagnosticMessage($"revocation reached the other replica after {watch.Elapsed.TotalMilliseconds:0} ms");
    }

    [Fact]
    public async Task ANonStreamedV1AnswerHasFreedItsGenerationSlotWhenTheClientHasItSoTheNextCallOnTheOtherReplicaIsAdmitted()
    {
        // One generation at a time per user: each answer, written whole with its Content-Length, reaches the
        // client only after its slot was released in Redis, so a call sent the moment it arrives is admitted
        // on either replica (never 429 concurrency).
        var (onA, onB, _, _, _) = await UserWithKeyAsync();
        for (var i = 0; i < 6; i++)
        {
            var r = await (i % 2 == 0 ? onA : onB).PostAsJsonAsync("v1/chat/completions",
                new { model = "demo/echo", messages = new[] { new { role = "user", content = $"turn{i}" } } }, Ct);
            var body = await r.Content.ReadAsByteArrayAsync(Ct);
            Assert.True(r.StatusCode == HttpStatusCode.OK, $"call {i}: {(int)r.StatusCode} {System.Text.Encoding.UTF8.GetString(body)}");
            Assert.Equal(body.Length, r.Content.Headers.ContentLength);
            Assert.Equal("application/json", r.Content.Headers.ContentType?.MediaType);
            var completion = JsonDocument.Parse(body).RootElement;
            Assert.Equal("chat.completion", completion.GetProperty("object").GetString());
            Assert.Contains($"turn{i}", completion.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        }
    }

    [Fact]
    public async Task ConcurrencyLimitHoldsAcrossReplicasAndAStreamResumesOnTheOther()
    {
        var (onA, onB, _, _, _) = await UserWithKeyAsync();
        var c = await NewConversationAsync(onA);
        // Long enough to outlast any machine's load: the generation is stopped once the limit was seen.
        var text = string.Join(" ", Enumerable.Range(0, 1000).Select(i => $"w{i}"));
        using var stream = await SendStreamedMessageAsync(onA, c, text);
        Guid assistant = default;
        var received = "";
        string? lastId = null;
        await foreach (var e in stream.ReadEventsAsync(Ct))
        {
            if (e.Type == "start")
            {
                assistant = e.Json.GetProperty("messageId").GetGuid();
            }
            if (e.Type == "delta")
            {
                received += e.Json.GetProperty("text").GetString();
                lastId = e.Id;
                if (received.Length > 20)
                {
                    break;
                }
            }
        }
        // One generation at a time for this user, wherever it is asked for.
        var second = await onB.PostAsJsonAsync($"api/conversations/{c}/messages", new { content = "second" }, Ct);
        Assert.Equal(HttpStatusCode.TooManyRequests, second.StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await onB.PostAsync($"api/conversations/{c}/messages/{assistant}/stop", null, Ct)).StatusCode);

        // The stream started on A continues on B from the last id, exactly, up to where it was stopped.
        using var resume = new HttpRequestMessage(HttpMethod.Get, $"api/conversations/{c}/messages/{assistant}/events");
        resume.Headers.Add("Last-Event-ID", lastId);
        using var resumed = await onB.SendForEventsAsync(resume, Ct);
        var rest = await resumed.ReadAllEventsAsync(Ct);
        Assert.Equal("done", rest[^1].Type);
        Assert.Equal("stopped", rest[^1].Json.GetProperty("status").GetString());
        var kept = rest[^1].Json.GetProperty("content").GetString()!;
        Assert.Equal(kept, received + string.Concat(rest.Where(e => e.Type == "delta").Select(e => e.Json.GetProperty("text").GetString())));
        Assert.StartsWith(kept, text);
    }

    [Fact]
    public async Task AStreamOpenedOnTheOtherReplicaRightAfterTheStartReadsTheWholeAnswerAndItsNextMessageThereIsAdmitted()
    {
        // The answer's stream in Redis is written first a batch's wait after the start: a reader on the other replica
        // that comes before finds no stream, follows the database and opens the log on its next try. Either way it
        // gets the whole text, in order, once, and the end; the end read from Redis comes after the answer's
        // settlement freed its generation slot there (one at a time for this user), so a message sent at once is admitted.
        var (onA, onB, _, _, _) = await UserWithKeyAsync();
        var c = await NewConversationAsync(onA);
        var text = string.Join(" ", Enumerable.Range(0, 30).Select(i => $"w{i}"));
        var (stream, events, assistant) = await StartStreamedMessageAsync(onA, c, text);
        using var _ = stream;
        using var onOther = await onB.SendForEventsAsync(new HttpRequestMessage(HttpMethod.Get, $"api/conversations/{c}/messages/{assistant}/events"), Ct);
        Assert.Equal(HttpStatusCode.OK, onOther.StatusCode);
        var read = await onOther.ReadAllEventsAsync(Ct);
        Assert.Equal("done", read[^1].Type);
        Assert.Equal("complete", read[^1].Json.GetProperty("status").GetString());
        var content = read[^1].Json.GetProperty("content").GetString()!;
        Assert.Equal(content, string.Concat(read.Where(e => e.Type == "delta").Select(e => e.Json.GetProperty("text").GetString())));
        Assert.Contains(text, content);
        using var next = await onB.PostAsJsonAsync($"api/conversations/{c}/messages", new { content = "next" }, Ct);
        Assert.True(next.IsSuccessStatusCode, $"{(int)next.StatusCode} {await next.Content.ReadAsStringAsync(Ct)}");
        await events.DisposeAsync();
    }

    [Fact]
    public async Task AChatAnswerHasFreedItsGenerationSlotWhenTheClientHasItSoTheNextMessageOnTheOtherReplicaIsAdmitted()
    {
        // One generation at a time per user: a JSON answer, and a streamed answer's end event, reach the client only
        // once the answer's slot is free in Redis, so a message sent the moment it arrives is admitted on either
        // replica (never 429 concurrency).
        var (onA, onB, _, _, _) = await UserWithKeyAsync();
        var c = await NewConversationAsync(onA);
        for (var i = 0; i < 6; i++)
        {
            var client = i % 2 == 0 ? onA : onB;
            if (i % 3 == 2)
            {
                using var stream = await SendStreamedMessageAsync(client, c, $"turn{i}");
                Assert.Equal(HttpStatusCode.OK, stream.StatusCode);
                var events = await stream.ReadAllEventsAsync(Ct);
                Assert.Equal("done", events[^1].Type);
                Assert.Contains($"turn{i}", events[^1].Json.GetProperty("content").GetString());
                continue;
            }
            using var r = await client.PostAsJsonAsync($"api/conversations/{c}/messages", new { content = $"turn{i}" }, Ct);
            var body = await r.Content.ReadAsStringAsync(Ct);
            Assert.True(r.IsSuccessStatusCode, $"message {i}: {(int)r.StatusCode} {body}");
            Assert.Contains($"turn{i}", JsonDocument.Parse(body).RootElement.GetProperty("assistantMessage").GetProperty("content").GetString());
        }
    }

    [Fact]
    public async Task Hole12_StreamLimitIsSharedAcrossReplicas()
    {
        var (onA, onB, _, _, _) = await UserWithKeyAsync();
        var c = await NewConversationAsync(onA);
        var text = string.Join(" ", Enumerable.Range(0, 1000).Select(i => $"w{i}"));
        var (stream, events, assistant) = await StartStreamedMessageAsync(onA, c, text);
        using var _ = stream;
        var path = $"api/conversations/{c}/messages/{assistant}/events";
        using var onOther = await onB.SendForEventsAsync(new HttpRequestMessage(HttpMethod.Get, path), Ct);
        Assert.Equal(HttpStatusCode.OK, onOther.StatusCode);

        // One stream on A and one on B: a third on either replica is refused.
        foreach (var client in new[] { onA, onB })
        {
            using var third = await client.SendForEventsAsync(new HttpRequestMessage(HttpMethod.Get, path), Ct);
            Assert.Equal(HttpStatusCode.TooManyRequests, third.StatusCode);
            Assert.True(third.Headers.Contains("Retry-After"));
            var problem = await third.Content.ReadFromJsonAsync<JsonElement>(Ct);
            Assert.Equal("streams", problem.GetProperty("limit").GetString());
        }
        Assert.Equal(HttpStatusCode.Accepted, (await onB.PostAsync($"api/conversations/{c}/messages/{assistant}/stop", null, Ct)).StatusCode);
        await events.DisposeAsync();
    }

    [Fact]
    public async Task AnAnswerCachedOnOneReplicaIsServedByTheOtherThroughRedis()
    {
        var (onA, onB, _, _, _) = await UserWithKeyAsync();
        var body = new { model = "demo/echo", messages = new[] { new { role = "user", content = "shared cache " + Guid.NewGuid() } } };
        using var first = await onA.PostAsJsonAsync("v1/chat/completions", body, Ct);
        using var second = await onB.PostAsJsonAsync("v1/chat/completions", body, Ct);
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        Assert.Equal(("MISS", "HIT"), (first.Headers.GetValues("X-Cache").Single(), second.Headers.GetValues("X-Cache").Single()));
        var a = await first.Content.ReadFromJsonAsync<JsonElement>(Ct);
        var b = await second.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal(a.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString(),
            b.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
    }
}
