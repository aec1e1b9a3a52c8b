using Jackcwf.Api.Backplane;
using Jackcwf.Api.Chat;
using Jackcwf.Api.Data;
using Jackcwf.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace Jackcwf.Api.Tests;

/// <summary>
/// The Redis event log as another replica reads it: a writer's batches and its final event (which carries the
/// text not written yet) leave the text whole and in order, whenever the end comes.
/// </summary>
public sealed class RedisEventLogTests : IAsyncLifetime
{
    private static readonly CancellationToken Ct = TestContext.Current.CancellationToken;
    private TestRedisDatabase _redisDb = null!;
    private ConnectionMultiplexer _redis = null!;

    public async ValueTask InitializeAsync()
    {
        _redisDb = await TestRedis.CreateDatabaseAsync(Ct);
        _redis = await ConnectionMultiplexer.ConnectAsync(_redisDb.Configuration);
    }

    public async ValueTask DisposeAsync()
    {
        await _redis.DisposeAsync();
        await _redisDb.DisposeAsync();
    }

    private RedisGenerationEventLog Replica() =>
        new(_redis, new RedisNotifications(_redis), NullLogger<RedisGenerationEventLog>.Instance, StreamDeadlines.Shared);

    [Fact]
    public async Task An_answer_that_ends_at_once_is_read_whole_on_another_replica_from_its_text_and_final_event()
    {
        using var writer = Replica();
        using var other = Replica();
        var id = Guid.NewGuid();
        var text = new AnswerText();
        await writer.BeginAsync(id, text);
        foreach (var delta in new[] { "Hello ", "brave ", "world" })
        {
            await writer.AppendDeltaAsync(id, delta, text.Append(delta));
        }
        await writer.CompleteAsync(id, ChatStreamFakes.Final(id, "Hello brave world", MessageStatuses.Complete));

        var key = RedisGenerationEventLog.StreamKey(id);
        var entries = await _redis.GetDatabase().StreamRangeAsync(key);
        // The text (one delta, written with the final event, unless the first batch went out meanwhile: then it
        // may have opened the stream with an opening entry), the final event.
        Assert.Equal("done", entries[^1]["t"].ToString());
        var texts = entries[..^1].SkipWhile(e => e["t"].ToString() == "b").ToArray();
        Assert.All(texts, e => Assert.Equal(GenerationEvent.Delta, e["t"].ToString()));
        Assert.Equal("Hello brave world", string.Concat(texts.Select(e => e["d"].ToString())));
        // The finished stream's time to live (15 s: how long finished streams stay is most of the log's memory, and the
        // database answers a later resume), not the running one's.
        Assert.InRange((await _redis.GetDatabase().KeyTimeToLiveAsync(key))!.Value, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(15));

        using var reader = other.Open(id, 6)!;
        Assert.False(reader.WriterIsLocal);
        var read = (await reader.ReadAsync(TimeSpan.Zero, Ct)).Events;
        Assert.Equal("brave world", string.Concat(read.Where(e => e.Type == GenerationEvent.Delta).Select(e => e.Data)));
        Assert.True(read[^1].IsFinal);
    }

    [Fact]
    public async Task An_abandoned_answers_stream_is_kept_as_long_as_a_finished_one_and_a_live_writers_stream_is_left_alone()
    {
        using var dead = Replica();
        using var sweeper = Replica();
        var deadId = Guid.NewGuid();
        var liveId = Guid.NewGuid();
        var text = new AnswerText();
        await dead.BeginAsync(deadId, text);
        await dead.AppendDeltaAsync(deadId, "Half an ", text.Append("Half an "));
        var liveText = new AnswerText();
        await sweeper.BeginAsync(liveId, liveText);
        await sweeper.AppendDeltaAsync(liveId, "Still going", liveText.Append("Still going"));
        var db = _redis.GetDatabase();
        var deadKey = RedisGenerationEventLog.StreamKey(deadId);
        var liveKey = RedisGenerationEventLog.StreamKey(liveId);
        // Both streams exist once their first batch is out (40 ms after the start), with the running time to live.
        while (!await db.KeyExistsAsync(deadKey) || !await db.KeyExistsAsync(liveKey))
        {
            await Task.Delay(10, Ct);
        }
        Assert.True((await db.KeyTimeToLiveAsync(deadKey))!.Value > TimeSpan.FromMinutes(4));

        // The writer's replica died (it never ends the stream); the lease sweeper on another one settled both answers:
        // one is this replica's own, whose lease ran out while it was alive (a stalled process), and keeps its stream.
        await sweeper.AbandonAsync([deadId, liveId, Guid.NewGuid()]);

        Assert.InRange((await db.KeyTimeToLiveAsync(deadKey))!.Value, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(15));
        Assert.True((await db.KeyTimeToLiveAsync(liveKey))!.Value > TimeSpan.FromMinutes(4));
        // A reader still gets the text the dead writer left, until the stream goes; then the database answers.
        using var reader = sweeper.Open(deadId, 0)!;
        Assert.Equal("Half an ", string.Concat((await reader.ReadAsync(TimeSpan.Zero, Ct)).Events.Select(e => e.Data)));
        await sweeper.CompleteAsync(liveId, ChatStreamFakes.Final(liveId, "Still going", MessageStatuses.Complete));
    }

    [Fact]
    public async Task Text_written_in_a_batch_and_text_waiting_at_the_end_are_both_read_once_in_order()
    {
        using var writer = Replica();
        using var other = Replica();
        var id = Guid.NewGuid();
        var text = new AnswerText();
        await writer.BeginAsync(id, text);
        // Another replica finds the stream before the first token, once the first batch's wait has passed: the
        // writer opens it by itself.
        IGenerationLogReader? found;
        while ((found = other.Open(id, 0)) is null)
        {
            await Task.Delay(10, Ct);
        }
        using var reader = found;
        Assert.Equal(["b"], (await _redis.GetDatabase().StreamRangeAsync(RedisGenerationEventLog.StreamKey(id))).Select(e => e["t"].ToString()));
        Assert.InRange((await _redis.GetDatabase().KeyTimeToLiveAsync(RedisGenerationEventLog.StreamKey(id)))!.Value, TimeSpan.FromMinutes(4), TimeSpan.FromMinutes(5));
        await writer.AppendDeltaAsync(id, "Hello ", text.Append("Hello "));
        var first = new List<GenerationEvent>();
        while (first.Count == 0)
        {
            first.AddRange((await reader.ReadAsync(TimeSpan.FromSeconds(30), Ct)).Events);
        }
        Assert.Equal("Hello ", Assert.Single(first).Data);

        await writer.AppendDeltaAsync(id, "world", text.Append("world"));
        await writer.CompleteAsync(id, ChatStreamFakes.Final(id, "Hello world", MessageStatuses.Complete));
        var rest = (await reader.ReadAsync(TimeSpan.Zero, Ct)).Events;
        Assert.Equal(["world"], rest.Where(e => e.Type == GenerationEvent.Delta).Select(e => e.Data));
        Assert.True(rest[^1].IsFinal);
        var entries = await _redis.GetDatabase().StreamRangeAsync(RedisGenerationEventLog.StreamKey(id));
        Assert.Equal(["b", GenerationEvent.Delta, GenerationEvent.Delta, "done"], entries.Select(e => e["t"].ToString()));
    }

    [Fact]
    public async Task The_final_event_goes_to_Redis_right_behind_the_settlement_and_this_replicas_readers_see_the_end_once_it_is_answered()
    {
        using var writer = Replica();
        var id = Guid.NewGuid();
        var text = new AnswerText();
        await writer.BeginAsync(id, text);
        await writer.AppendDeltaAsync(id, "Hello", text.Append("Hello"));
        using var local = writer.Open(id, 0)!;
        Assert.True(local.WriterIsLocal);
        var db = _redis.GetDatabase();
        var slot = (RedisKey)$"test:slot:{id:N}";
        await db.StringSetAsync(slot, "held");
        var answered = new TaskCompletionSource();
        // The settlement: one command on the same connection (the slot freed), whose answer this test holds back.
        var completing = writer.CompleteAsync(id, ChatStreamFakes.Final(id, "Hello", MessageStatuses.Complete),
            () => new ValueTask(Task.WhenAll(db.StringSetAsync(slot, "free"), answered.Task)));

        // The final event reaches Redis without waiting for the settlement's answer, and never before the settlement:
        // every read that finds the end (the stream and the slot read atomically) finds the slot free.
        var key = RedisGenerationEventLog.StreamKey(id);
        while (true)
        {
            var read = db.CreateTransaction();
            var entries = read.StreamRangeAsync(key);
            var state = read.StringGetAsync(slot);
            Assert.True(await read.ExecuteAsync());
            if ((await entries).Any(e => e["t"] == "done"))
            {
                Assert.Equal("free", (string?)await state);
                break;
            }
            await Task.Delay(5, Ct);
        }
        // This replica's readers see the text, and the end only once the settlement is answered.
        Assert.DoesNotContain((await local.ReadAsync(TimeSpan.Zero, Ct)).Events, e => e.IsFinal);
        Assert.False(completing.IsCompleted);
        answered.SetResult();
        await completing;
        Assert.True((await local.ReadAsync(TimeSpan.Zero, Ct)).Events[^1].IsFinal);
    }
}
