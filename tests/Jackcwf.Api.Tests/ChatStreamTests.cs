using System.Text.Json;
using Jackcwf.Api.Chat;
using Jackcwf.Api.Data;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Jackcwf.Api.Tests;

/// <summary>The in-process event log as storage: append, read from an offset, complete.</summary>
public sealed class EventLogTests
{
    [Fact]
    public async Task ReadingFromAnOffsetInsideADeltaReturnsOnlyTheMissingPart()
    {
        using var log = new InProcessGenerationEventLog();
        var id = Guid.NewGuid();
        await log.BeginAsync(id);
        await log.AppendDeltaAsync(id, "Hello ", 6);
        await log.AppendDeltaAsync(id, "brave ", 12);
        await log.AppendDeltaAsync(id, "world", 17);
        await log.CompleteAsync(id, ChatStreamFakes.Final(id, "Hello brave world", MessageStatuses.Complete));
        using var reader = log.Open(id, 8)!;
        var read = (await reader.ReadAsync(TimeSpan.Zero, TestContext.Current.CancellationToken)).Events;
        Assert.Equal(["ave ", "world"], read.Where(e => e.Type == GenerationEvent.Delta).Select(e => e.Data));
        Assert.Equal(["12", "17"], read.Where(e => e.Type == GenerationEvent.Delta).Select(e => e.Id));
        Assert.Equal(GenerationEvent.Final, read[^1].Type);
        Assert.Empty((await reader.ReadAsync(TimeSpan.Zero, TestContext.Current.CancellationToken)).Events);
        Assert.Null(log.Open(Guid.NewGuid(), 0));
    }

    [Fact]
    public async Task AWaitingReaderGetsNothingUntilItsWaitEndsThenTheNewDeltas()
    {
        var time = new FakeTimeProvider();
        using var deadlines = new StreamDeadlines(time);
        using var log = new InProcessGenerationEventLog(deadlines);
        var id = Guid.NewGuid();
        await log.BeginAsync(id);
        using var reader = log.Open(id, 0)!;
        var waiting = reader.ReadAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken).AsTask();
        var empty = await ChatStreamFakes.AdvanceUntilAsync(waiting, time);
        Assert.Empty(empty.Events);
        await log.AppendDeltaAsync(id, "late", 4);
        var batch = await reader.ReadAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken);
        Assert.Equal("late", Assert.Single(batch.Events).Data);
    }
}

/// <summary>The one timer of every open stream's waits: shared per grid step, never early.</summary>
public sealed class StreamDeadlinesTests
{
    [Fact]
    public void Waits_ending_in_the_same_step_share_one_pending_task_and_none_ends_before_its_deadline()
    {
        var time = new FakeTimeProvider();
        using var deadlines = new StreamDeadlines(time);
        var waits = Enumerable.Range(0, 1000).Select(_ => deadlines.Delay(TimeSpan.FromSeconds(15))).ToList();
        time.Advance(StreamDeadlines.Step / 5);
        waits.Add(deadlines.Delay(TimeSpan.FromSeconds(15) - StreamDeadlines.Step / 5));
        var later = deadlines.Delay(TimeSpan.FromSeconds(16));

        // A thousand and one waits for the same moment cost one pending task, not one each.
        Assert.Equal(2, deadlines.Count);
        Assert.Single(waits.Distinct());

        time.Advance(TimeSpan.FromSeconds(15) - StreamDeadlines.Step / 5 - TimeSpan.FromMilliseconds(1));
        Assert.All(waits, w => Assert.False(w.IsCompleted));
        time.Advance(StreamDeadlines.Step + StreamDeadlines.Resolution);
        Assert.All(waits, w => Assert.True(w.IsCompletedSuccessfully));
        Assert.False(later.IsCompleted);
        Assert.Equal(1, deadlines.Count);

        time.Advance(TimeSpan.FromSeconds(1) + StreamDeadlines.Step + StreamDeadlines.Resolution);
        Assert.True(later.IsCompletedSuccessfully);
        Assert.Equal(0, deadlines.Count);
    }

    [Fact]
    public async Task A_wait_that_ends_on_its_signal_does_not_end_the_shared_deadline_of_the_others()
    {
        var time = new FakeTimeProvider();
        using var deadlines = new StreamDeadlines(time);
        var signal = new TaskCompletionSource();
        var early = deadlines.WaitAsync(signal.Task, TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken);
        var other = deadlines.Delay(TimeSpan.FromSeconds(5));
        signal.SetResult();
        Assert.True(await early);
        Assert.False(other.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(5) + StreamDeadlines.Step + StreamDeadlines.Resolution);
        Assert.True(other.IsCompletedSuccessfully);
    }
}

/// <summary>The one timer of every running answer's next Redis batch: each called back after its wait, never early, the timer off when idle.</summary>
public sealed class BatchClockTests
{
    private sealed class Batch : Jackcwf.Api.Backplane.IBatchDue
    {
        public int Calls;

        public void Due() => Calls++;
    }

    [Fact]
    public void Each_batch_is_called_back_once_after_its_wait_and_never_before()
    {
        var time = new FakeTimeProvider();
        var wait = TimeSpan.FromMilliseconds(40);
        using var clock = new Jackcwf.Api.Backplane.BatchClock(time, wait);
        var first = new Batch();
        var second = new Batch();
        clock.Schedule(first);
        time.Advance(TimeSpan.FromMilliseconds(15));
        clock.Schedule(second);
        Assert.Equal(2, clock.Count);

        time.Advance(wait - TimeSpan.FromMilliseconds(15) - TimeSpan.FromMilliseconds(1));
        Assert.Equal(0, first.Calls);
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(1, first.Calls);
        Assert.Equal(0, second.Calls);
        Assert.Equal(1, clock.Count);

        // The second was registered 15 ms later: due 15 ms after the first, not before.
        time.Advance(TimeSpan.FromMilliseconds(14));
        Assert.Equal(0, second.Calls);
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(1, second.Calls);
        Assert.Equal(0, clock.Count);

        // Idle, then used again: the timer starts from the new registration.
        time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal((1, 1), (first.Calls, second.Calls));
        clock.Schedule(first);
        time.Advance(wait - TimeSpan.FromMilliseconds(1));
        Assert.Equal(1, first.Calls);
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(2, first.Calls);
    }

    [Fact]
    public void Batches_due_within_a_grain_of_each_other_are_called_back_together_and_none_early()
    {
        var time = new FakeTimeProvider();
        var wait = TimeSpan.FromMilliseconds(40);
        using var clock = new Jackcwf.Api.Backplane.BatchClock(time, wait);
        var batches = Enumerable.Range(0, 1000).Select(_ => new Batch()).ToList();
        foreach (var b in batches)
        {
            clock.Schedule(b);
            time.Advance(TimeSpan.FromTicks(Jackcwf.Api.Backplane.BatchClock.Grain.Ticks / 1000));
        }

        // The first is due 40 ms after it was registered; the last a grain later. None is called before its time.
        time.Advance(wait - Jackcwf.Api.Backplane.BatchClock.Grain);
        Assert.Equal(1, batches.Sum(b => b.Calls));
        time.Advance(Jackcwf.Api.Backplane.BatchClock.Grain - TimeSpan.FromTicks(1));
        Assert.Equal(1, batches.Sum(b => b.Calls));
        time.Advance(TimeSpan.FromTicks(1));
        Assert.All(batches, b => Assert.Equal(1, b.Calls));
        Assert.Equal(0, clock.Count);
    }
}

/// <summary><see cref="GenerationStream"/>: tail the log, or follow the database when the log has nothing; a fake clock, no host.</summary>
public sealed class GenerationStreamTests
{
    private static readonly CancellationToken Ct = TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_stream_tails_the_log_from_the_offset_to_its_final_event()
    {
        var f = new ChatStreamFakes();
        var id = Guid.NewGuid();
        await f.Log.BeginAsync(id);
        await f.Log.AppendDeltaAsync(id, "Hello ", 6);
        await f.Log.AppendDeltaAsync(id, "world", 11);
        await f.Log.CompleteAsync(id, ChatStreamFakes.Final(id, "Hello world", MessageStatuses.Complete));

        var events = await f.ReadAllAsync(id, 3);

        Assert.Equal(["lo ", "world"], events.Where(e => e.Type == GenerationEvent.Delta).Select(e => e.Data));
        var (type, data) = SseWriter.FinalEvent(JsonSerializer.Deserialize(events[^1].Data, Web.AppJsonContext.Default.GenerationFinal)!);
        Assert.Equal(GenerationEvent.Done, type);
        Assert.Equal("Hello world", JsonDocument.Parse(data).RootElement.GetProperty("content").GetString());
        Assert.Equal(0, f.Answers.Reads);
    }

    [Fact]
    public async Task A_silent_answer_gets_keep_alives_then_its_new_text()
    {
        var f = new ChatStreamFakes();
        var id = Guid.NewGuid();
        await f.Log.BeginAsync(id);
        await using var stream = f.Stream.ReadAsync(id, 0, Ct).GetAsyncEnumerator(Ct);

        Assert.Equal(GenerationEvent.KeepAlive, (await f.NextAsync(stream)).Type);
        await f.Log.AppendDeltaAsync(id, "late", 4);
        await f.Log.CompleteAsync(id, ChatStreamFakes.Final(id, "late", MessageStatuses.Complete));
        var rest = new List<GenerationEvent>();
        while (rest.LastOrDefault().Type != GenerationEvent.Final)
        {
            rest.Add(await f.NextAsync(stream));
        }
        Assert.Equal("late", rest.Single(e => e.Type == GenerationEvent.Delta).Data);
    }

    [Fact]
    public async Task Without_a_log_the_stream_follows_the_database_checkpoints_to_the_stored_end()
    {
        var f = new ChatStreamFakes();
        var id = Guid.NewGuid();
        f.Answers.Enqueue(ChatStreamFakes.Stored(id, "Hel", MessageStatuses.Streaming), ChatStreamFakes.Stored(id, "Hello", MessageStatuses.Stopped));

        var events = await f.ReadAllAsync(id, 0);

        var deltas = events.Where(e => e.Type == GenerationEvent.Delta).ToList();
        Assert.Equal(["Hel", "lo"], deltas.Select(e => e.Data));
        Assert.Equal(["3", "5"], deltas.Select(e => e.Id));
        var final = JsonSerializer.Deserialize(events[^1].Data, Web.AppJsonContext.Default.GenerationFinal)!;
        Assert.Equal(MessageStatuses.Stopped, final.Message.Status);
        Assert.Equal(GenerationEvent.Done, SseWriter.FinalEvent(final).Type);
    }

    [Fact]
    public async Task A_gap_in_another_replicas_log_is_filled_from_the_database()
    {
        var f = new ChatStreamFakes();
        var id = Guid.NewGuid();
        var remote = new RemoteLog(f.Deadlines, new LogBatch([GenerationEvent.ForDelta("He", 2)], Gap: true));
        var stream = f.StreamOver(remote);
        f.Answers.Enqueue(ChatStreamFakes.Stored(id, "Hello", MessageStatuses.Failed, "timeout"));

        var events = await f.ReadAllAsync(stream, id, 0);

        Assert.Equal(["He", "llo"], events.Where(e => e.Type == GenerationEvent.Delta).Select(e => e.Data));
        var (type, data) = SseWriter.FinalEvent(JsonSerializer.Deserialize(events[^1].Data, Web.AppJsonContext.Default.GenerationFinal)!);
        Assert.Equal(GenerationEvent.Error, type);
        Assert.Equal("provider_timeout", JsonDocument.Parse(data).RootElement.GetProperty("code").GetString());
    }

    [Fact]
    public async Task When_another_replicas_writer_falls_silent_the_database_settles_the_stream()
    {
        var f = new ChatStreamFakes();
        var id = Guid.NewGuid();
        var stream = f.StreamOver(new RemoteLog(f.Deadlines));
        // The lease sweeper marked it interrupted after its replica died.
        f.Answers.Enqueue(ChatStreamFakes.Stored(id, "partial", MessageStatuses.Interrupted));

        var events = await f.ReadAllAsync(stream, id, 0);

        Assert.Equal("partial", events.Single(e => e.Type == GenerationEvent.Delta).Data);
        var (type, data) = SseWriter.FinalEvent(JsonSerializer.Deserialize(events[^1].Data, Web.AppJsonContext.Default.GenerationFinal)!);
        Assert.Equal(GenerationEvent.Error, type);
        Assert.Equal("interrupted", JsonDocument.Parse(data).RootElement.GetProperty("code").GetString());
    }

    [Fact]
    public async Task A_stopping_replica_ends_a_followed_stream_without_a_final_event_but_finishes_its_own()
    {
        var f = new ChatStreamFakes();
        f.Lifetime.Stop();
        var elsewhere = Guid.NewGuid();
        Assert.Empty(await f.ReadAllAsync(elsewhere, 0));
        Assert.Equal(0, f.Answers.Reads);

        var here = Guid.NewGuid();
        await f.Log.BeginAsync(here);
        await f.Log.AppendDeltaAsync(here, "done here", 9);
        await f.Log.CompleteAsync(here, ChatStreamFakes.Final(here, "done here", MessageStatuses.Complete));
        Assert.Equal(GenerationEvent.Final, (await f.ReadAllAsync(here, 0))[^1].Type);
    }

    [Fact]
    public async Task Waiting_for_a_stored_answer_returns_it_once_finished()
    {
        var f = new ChatStreamFakes();
        var id = Guid.NewGuid();
        f.Answers.Enqueue(ChatStreamFakes.Stored(id, "a", MessageStatuses.Streaming), ChatStreamFakes.Stored(id, "ab", MessageStatuses.Complete));

        var stored = await ChatStreamFakes.AdvanceUntilAsync(f.Stream.WaitForStoredAsync(id, TimeSpan.FromMinutes(1), Ct), f.Time);

        Assert.Equal("ab", stored!.Content);
    }

    [Fact]
    public async Task Waiting_for_a_stored_answer_gives_up_at_its_deadline()
    {
        var f = new ChatStreamFakes();
        var id = Guid.NewGuid();
        f.Answers.Enqueue(ChatStreamFakes.Stored(id, "still going", MessageStatuses.Streaming));
        var started = f.Time.GetUtcNow();

        var stored = await ChatStreamFakes.AdvanceUntilAsync(f.Stream.WaitForStoredAsync(id, TimeSpan.FromSeconds(30), Ct), f.Time);

        Assert.Null(stored);
        Assert.InRange(f.Time.GetUtcNow() - started, TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(31));
    }

    [Fact]
    public async Task Text_read_from_the_database_is_not_sent_again_when_the_log_catches_up()
    {
        var f = new ChatStreamFakes();
        var id = Guid.NewGuid();
        var remote = new RemoteLog(f.Deadlines, new LogBatch([GenerationEvent.ForDelta("He", 2)]));
        await using var stream = f.StreamOver(remote).ReadAsync(id, 0, Ct).GetAsyncEnumerator(Ct);
        // The writer falls silent; the database has more than the log gave.
        f.Answers.Enqueue(ChatStreamFakes.Stored(id, "Hello", MessageStatuses.Streaming));
        var events = new List<GenerationEvent>();
        while (events.LastOrDefault().Data != "llo")
        {
            events.Add(await f.NextAsync(stream));
        }
        remote.Batches.Enqueue(new LogBatch([GenerationEvent.ForDelta("llo world", 11), GenerationEvent.ForFinal(ChatStreamFakes.Final(id, "Hello world", MessageStatuses.Complete))]));
        while (!events[^1].IsFinal)
        {
            events.Add(await f.NextAsync(stream));
        }

        Assert.Equal("Hello world", string.Concat(events.Where(e => e.Type == GenerationEvent.Delta).Select(e => e.Data)));
        Assert.Equal(["2", "5", "11"], events.Where(e => e.Type == GenerationEvent.Delta).Select(e => e.Id));
    }

    /// <summary>Another replica's log: knows every message, returns its batches in order, then waits and returns nothing.</summary>
    private sealed class RemoteLog(StreamDeadlines deadlines, LogBatch? first = null) : IGenerationEventLog
    {
        public System.Collections.Concurrent.ConcurrentQueue<LogBatch> Batches { get; } = new(first is { } b ? [b] : []);

        public ValueTask BeginAsync(Guid messageId, AnswerText? text = null) => ValueTask.CompletedTask;
        public ValueTask AppendDeltaAsync(Guid messageId, string text, int endOffset) => ValueTask.CompletedTask;
        public ValueTask CompleteAsync(Guid messageId, GenerationFinal final, Func<ValueTask>? before = null) => before?.Invoke() ?? ValueTask.CompletedTask;

        public IGenerationLogReader? Open(Guid messageId, int fromOffset) => new Reader(deadlines, Batches);

        private sealed class Reader(StreamDeadlines deadlines, System.Collections.Concurrent.ConcurrentQueue<LogBatch> batches) : IGenerationLogReader
        {
            public bool WriterIsLocal => false;

            public async ValueTask<LogBatch> ReadAsync(TimeSpan wait, CancellationToken ct)
            {
                if (batches.TryDequeue(out var batch))
                {
                    return batch;
                }
                await deadlines.Delay(wait).WaitAsync(ct);
                return batches.TryDequeue(out batch) ? batch : LogBatch.Empty;
            }

            public void Dispose()
            {
            }
        }
    }
}

/// <summary>A fake clock, the in-process log, a scripted database and a lifetime a test can stop.</summary>
internal sealed class ChatStreamFakes
{
    public FakeTimeProvider Time { get; } = new(new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero));
    public StreamDeadlines Deadlines { get; }
    public InProcessGenerationEventLog Log { get; }
    public ScriptedAnswers Answers { get; } = new();
    public TestLifetime Lifetime { get; } = new();
    public GenerationStream Stream { get; }

    public ChatStreamFakes()
    {
        Deadlines = new StreamDeadlines(Time);
        Log = new InProcessGenerationEventLog(Deadlines);
        Stream = StreamOver(Log);
    }

    public GenerationStream StreamOver(IGenerationEventLog log) => new(log, Answers, Deadlines, Time,
        Options.Create(new ChatSettings { KeepAliveIntervalMs = 1000, CheckpointIntervalMs = 100 }), Lifetime, NullLogger<GenerationStream>.Instance);

    public static GenerationFinal Final(Guid id, string content, string status) => GenerationFinal.FromStored(Stored(id, content, status));

    public static Message Stored(Guid id, string content, string status, string? error = null) => new()
    {
        Id = id, ConversationId = Guid.Empty, Role = MessageRoles.Assistant, Content = content, Status = status, ErrorCode = error,
        CreatedAt = new DateTime(2030, 1, 1, 0, 0, 0, DateTimeKind.Utc),
    };

    public Task<List<GenerationEvent>> ReadAllAsync(Guid id, int offset) => ReadAllAsync(Stream, id, offset);

    public async Task<List<GenerationEvent>> ReadAllAsync(GenerationStream stream, Guid id, int offset)
    {
        var all = new List<GenerationEvent>();
        await using var e = stream.ReadAsync(id, offset, TestContext.Current.CancellationToken).GetAsyncEnumerator(TestContext.Current.CancellationToken);
        while (await AdvanceUntilAsync(e.MoveNextAsync().AsTask(), Time))
        {
            all.Add(e.Current);
        }
        return all;
    }

    public async Task<GenerationEvent> NextAsync(IAsyncEnumerator<GenerationEvent> e)
    {
        Assert.True(await AdvanceUntilAsync(e.MoveNextAsync().AsTask(), Time));
        return e.Current;
    }

    /// <summary>Moves the fake clock on in small steps until <paramref name="task"/> completes (the clock, not the machine, sets the pace).</summary>
    public static async Task<T> AdvanceUntilAsync<T>(Task<T> task, FakeTimeProvider time)
    {
        for (var step = 0; !task.IsCompleted; step++)
        {
            Assert.True(step < 100_000, "the operation never completed");
            await Task.WhenAny(task, Task.Delay(1, TestContext.Current.CancellationToken));
            if (!task.IsCompleted)
            {
                time.Advance(StreamDeadlines.Resolution);
            }
        }
        return await task;
    }

    /// <summary>The database as a script: each read returns the next message, the last one again once the script ends.</summary>
    public sealed class ScriptedAnswers : IStoredAnswers
    {
        private readonly Queue<Message> _script = new();
        private Message? _last;

        public int Reads { get; private set; }

        public void Enqueue(params Message[] messages)
        {
            foreach (var m in messages)
            {
                _script.Enqueue(m);
            }
        }

        public Task<Message?> ReadAsync(Guid messageId, CancellationToken cancellationToken)
        {
            Reads++;
            _last = _script.TryDequeue(out var next) ? next : _last;
            return Task.FromResult(_last);
        }
    }

    public sealed class TestLifetime : IHostApplicationLifetime
    {
        private readonly CancellationTokenSource _stopping = new();

        public CancellationToken ApplicationStarted => CancellationToken.None;
        public CancellationToken ApplicationStopping => _stopping.Token;
        public CancellationToken ApplicationStopped => CancellationToken.None;

        public void StopApplication() => _stopping.Cancel();

        public void Stop() => _stopping.Cancel();
    }
}

// Alone: another test's Redis connection failing meanwhile would raise the process's minimum too.
[CollectionDefinition(nameof(FailoverThreadsTests), DisableParallelization = true)]
public sealed class FailoverThreadsCollection;

[Collection(nameof(FailoverThreadsTests))]
public sealed class FailoverThreadsTests
{
    [Fact]
    public void ALostRedisConnectionRaisesThePoolMinimumUntilItIsLoweredBack()
    {
        Jackcwf.Api.Backplane.FailoverThreads.Lower();
        ThreadPool.GetMinThreads(out var workerBefore, out var ioBefore);
        Assert.True(workerBefore < Jackcwf.Api.Backplane.FailoverThreads.Threads, $"the test process starts with a minimum of {workerBefore}");

        Assert.True(Jackcwf.Api.Backplane.FailoverThreads.Raise());
        ThreadPool.GetMinThreads(out var worker, out _);
        Assert.Equal(Jackcwf.Api.Backplane.FailoverThreads.Threads, worker);
        Assert.True(Jackcwf.Api.Backplane.FailoverThreads.Raised);

        // A second loss (or the recovery) while raised keeps it raised and reports no new raise.
        Assert.False(Jackcwf.Api.Backplane.FailoverThreads.Raise());
        ThreadPool.GetMinThreads(out worker, out _);
        Assert.Equal(Jackcwf.Api.Backplane.FailoverThreads.Threads, worker);

        Jackcwf.Api.Backplane.FailoverThreads.Lower();
        ThreadPool.GetMinThreads(out worker, out var io);
        Assert.Equal((workerBefore, ioBefore), (worker, io));
        Assert.False(Jackcwf.Api.Backplane.FailoverThreads.Raised);
    }
}
