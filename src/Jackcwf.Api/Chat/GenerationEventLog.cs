using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using Jackcwf.Api.Conversations;
using Jackcwf.Api.Data;
using Jackcwf.Api.Web;

namespace Jackcwf.Api.Chat;

/// <summary>One event of a generation's log. <see cref="Id"/> is the opaque SSE id.</summary>
/// <remarks>
/// Delta ids are the character offset in the final text where the delta ends, so a client's
/// <c>Last-Event-ID</c> says exactly how much text it holds, on whichever replica it reconnects to
/// and however the deltas were coalesced there. A delta's <see cref="Data"/> is the raw text; a
/// final event's is a <see cref="GenerationFinal"/> as JSON (the SSE writer turns it into
/// <c>done</c> or <c>error</c>).
/// </remarks>
public readonly record struct GenerationEvent(string Type, string Id, string Data)
{
    public const string Delta = "delta";
    public const string Final = "final";
    public const string KeepAlive = "keep-alive";

    /// <summary>Final events as an earlier version stored them in Redis, already in their SSE form.</summary>
    public const string Done = "done";
    public const string Error = "error";

    public bool IsFinal => Type is Final or Done or Error;

    public static GenerationEvent ForDelta(string text, int endOffset) => new(Delta, endOffset.ToString(CultureInfo.InvariantCulture), text);

    public static GenerationEvent ForFinal(GenerationFinal final) =>
        new(Final, final.Message.Content.Length.ToString(CultureInfo.InvariantCulture), JsonSerializer.Serialize(final, AppJsonContext.Default.GenerationFinal));
}

/// <summary>How a generation ended: the stored answer, and the failure when it failed.</summary>
public sealed record GenerationFinal(MessageDto Message, FinalFailure? Failure)
{
    /// <summary>The end as the database keeps it (the answer's owner is gone, or its log expired).</summary>
    public static GenerationFinal FromStored(Message m) => new(MessageDto.From(m), m.Status == MessageStatuses.Failed
        ? new FinalFailure(m.ErrorCode ?? "other", 502, "The model provider failed", m.ErrorDetail ?? "The model provider failed while answering.")
        : null);
}

/// <summary>A failed generation's problem, as the caller sees it (<see cref="Ai.ProviderFailure"/> without its retry hints).</summary>
public sealed record FinalFailure(string Kind, int HttpStatus, string Title, string Detail);

/// <summary>What one read of a log returned: events in order, or <see cref="Gap"/> when the log cannot go on from here.</summary>
public readonly record struct LogBatch(IReadOnlyList<GenerationEvent> Events, bool Gap = false)
{
    public static readonly LogBatch Empty = new([]);
    public static readonly LogBatch Lost = new([], true);
}

/// <summary>A reader's position in one message's log.</summary>
public interface IGenerationLogReader : IDisposable
{
    /// <summary>The generation runs in this process: its log ends with a final event unless the process dies with it.</summary>
    bool WriterIsLocal { get; }

    /// <summary>
    /// The events after the reader's position (a partial delta cut to what is missing), waiting up to
    /// <paramref name="wait"/> when there are none yet. After a final event, reads return nothing.
    /// </summary>
    ValueTask<LogBatch> ReadAsync(TimeSpan wait, CancellationToken cancellationToken);
}

/// <summary>
/// Where a running generation's events are kept for its readers: append, read from an offset, complete.
/// Storage only: following the database when the log knows nothing is <see cref="GenerationStream"/>'s
/// job. In-process for one replica; a Redis Streams implementation carries it across replicas.
/// </summary>
public interface IGenerationEventLog
{
    /// <summary>
    /// Registers a running message. <paramref name="text"/> is its answer's text as the generation appends
    /// to it (before each <see cref="AppendDeltaAsync"/>): the log reads it there and keeps no copy of its own.
    /// Without it, the log keeps the text it is given.
    /// </summary>
    ValueTask BeginAsync(Guid messageId, AnswerText? text = null);

    /// <summary>Appends a delta; <paramref name="endOffset"/> is the text length after it.</summary>
    ValueTask AppendDeltaAsync(Guid messageId, string text, int endOffset);

    /// <summary>
    /// Ends the message's log with its final event. <paramref name="before"/> (the chat runner's settlement of the
    /// answer's cost with its generation slot's release) is started first, before anything of the final event
    /// is sent, and awaited before any reader of this log can see the end: a client that has the end may send its
    /// next message at once, to any replica, whose admission must find the slot free. A log across replicas sends
    /// its final event right behind it, on the same connection, without waiting for it in between.
    /// </summary>
    ValueTask CompleteAsync(Guid messageId, GenerationFinal final, Func<ValueTask>? before = null);

    /// <summary>A reader from <paramref name="fromOffset"/>, or null when this log does not know the message.</summary>
    IGenerationLogReader? Open(Guid messageId, int fromOffset);

    /// <summary>
    /// The lease sweeper has settled these answers in the database as interrupted: their writer stopped renewing its
    /// lease (its replica crashed or was killed) and will never end their logs. A log across replicas then keeps their
    /// streams only as long as a finished answer's, instead of a running one's; readers already turn to the database
    /// when a writer falls silent. A log in one replica has nothing to do: its writers die with it.
    /// </summary>
    ValueTask AbandonAsync(IReadOnlyList<Guid> messageIds) => ValueTask.CompletedTask;
}

public sealed class InProcessGenerationEventLog : IGenerationEventLog, IDisposable
{
    /// <summary>
    /// How long a finished log stays for late resumes; after that the database answers. Its text stays in the
    /// replica's memory until then (swept every 5 s), as Redis keeps the finished stream (RedisGenerationEventLog).
    /// </summary>
    private static readonly TimeSpan Retention = TimeSpan.FromSeconds(15);

    private readonly ConcurrentDictionary<Guid, Entry> _entries = new();
    private readonly Timer _sweeper;
    private readonly StreamDeadlines _deadlines;

    public InProcessGenerationEventLog(StreamDeadlines? deadlines = null)
    {
        _deadlines = deadlines ?? StreamDeadlines.Shared;
        _sweeper = new Timer(_ => Sweep(), null, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(5));
    }

    public ValueTask BeginAsync(Guid messageId, AnswerText? text = null)
    {
        _entries.TryAdd(messageId, new Entry(text ?? new AnswerText()));
        return ValueTask.CompletedTask;
    }

    public ValueTask AppendDeltaAsync(Guid messageId, string text, int endOffset)
    {
        if (_entries.TryGetValue(messageId, out var e))
        {
            e.AddDelta(text, endOffset);
        }
        return ValueTask.CompletedTask;
    }

    public async ValueTask CompleteAsync(Guid messageId, GenerationFinal final, Func<ValueTask>? before = null)
    {
        if (before is not null)
        {
            await before();
        }
        if (_entries.TryGetValue(messageId, out var e))
        {
            e.Complete(GenerationEvent.ForFinal(final));
            e.CompletedAt = Environment.TickCount64;
        }
    }

    public IGenerationLogReader? Open(Guid messageId, int fromOffset) =>
        _entries.TryGetValue(messageId, out var entry) ? new Reader(entry, fromOffset, _deadlines) : null;

    private void Sweep()
    {
        var cutoff = Environment.TickCount64 - (long)Retention.TotalMilliseconds;
        foreach (var (id, e) in _entries)
        {
            if (e.CompletedAt is { } done && done < cutoff)
            {
                _entries.TryRemove(id, out _);
            }
        }
    }

    public void Dispose() => _sweeper.Dispose();

    private sealed class Reader(Entry entry, int fromOffset, StreamDeadlines deadlines) : IGenerationLogReader
    {
        private int _index;
        private int _sent = fromOffset;
        private bool _ended;

        public bool WriterIsLocal => true;

        public async ValueTask<LogBatch> ReadAsync(TimeSpan wait, CancellationToken ct)
        {
            if (_ended)
            {
                return LogBatch.Empty;
            }
            var (deltas, final, changed) = entry.Snapshot(_index);
            if (deltas.Count == 0 && final is null)
            {
                // The wait shares the one stream timer.
                await deadlines.WaitAsync(changed, wait, ct);
                (deltas, final, changed) = entry.Snapshot(_index);
            }
            var events = new List<GenerationEvent>(deltas.Count + 1);
            foreach (var (start, end) in deltas)
            {
                _index++;
                if (end <= _sent)
                {
                    continue;
                }
                // The delta's text, cut to what the reader lacks, read from the answer's one copy.
                events.Add(GenerationEvent.ForDelta(entry.Text.Slice(Math.Max(start, _sent), end), end));
                _sent = end;
            }
            if (final is { } f)
            {
                events.Add(f);
                _ended = true;
            }
            return new LogBatch(events);
        }

        public void Dispose()
        {
        }
    }

    /// <summary>One message's log: its text (shared with the generation) and where each delta ends in it, then the final event.</summary>
    private sealed class Entry(AnswerText text)
    {
        private readonly List<(int Start, int End)> _deltas = [];
        private GenerationEvent? _final;
        private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly Lock _lock = new();

        public AnswerText Text => text;

        public long? CompletedAt { get; set; }

        public void AddDelta(string delta, int end)
        {
            // A shared text has it already (the generation appended it before telling the log).
            text.AppendUpTo(delta, end);
            TaskCompletionSource signal;
            lock (_lock)
            {
                _deltas.Add((end - delta.Length, end));
                signal = Renew();
            }
            signal.TrySetResult();
        }

        public void Complete(GenerationEvent final)
        {
            TaskCompletionSource signal;
            lock (_lock)
            {
                _final = final;
                signal = Renew();
            }
            signal.TrySetResult();
        }

        private TaskCompletionSource Renew()
        {
            var signal = _changed;
            _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
            return signal;
        }

        /// <summary>The deltas from index <paramref name="from"/>, the final event once every delta is in, and a task completing at the next change.</summary>
        public (List<(int Start, int End)> Deltas, GenerationEvent? Final, Task Changed) Snapshot(int from)
        {
            lock (_lock)
            {
                return (from < _deltas.Count ? _deltas.GetRange(from, _deltas.Count - from) : [], _final, _changed.Task);
            }
        }
    }
}
