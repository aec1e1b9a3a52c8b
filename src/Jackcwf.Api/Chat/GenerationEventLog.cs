using System.Collections.Concurrent;
using System.Runtime.CompilerServices;

namespace Jackcwf.Api.Chat;

/// <summary>One event of a generation's log. <see cref="Id"/> is the opaque SSE id.</summary>
/// <remarks>
/// Delta ids are the character offset in the final text where the delta ends, so a client's
/// <c>Last-Event-ID</c> says exactly how much text it holds, on whichever replica it reconnects to
/// and however the deltas were coalesced there.
/// </remarks>
public readonly record struct GenerationEvent(string Type, string Id, string Data)
{
    public const string Delta = "delta";
    public const string Done = "done";
    public const string Error = "error";
    public const string KeepAlive = "keep-alive";

    public bool IsFinal => Type is Done or Error;
}

/// <summary>
/// The log a running generation writes and any number of readers tail. In-process for one replica;
/// a Redis Streams implementation carries it across replicas.
/// </summary>
public interface IGenerationEventLog
{
    ValueTask BeginAsync(Guid messageId);

    /// <summary>Appends a delta; <paramref name="endOffset"/> is the text length after it.</summary>
    ValueTask AppendDeltaAsync(Guid messageId, string text, int endOffset);

    ValueTask CompleteAsync(Guid messageId, GenerationEvent final);

    /// <summary>
    /// Reads events after <paramref name="fromOffset"/> (a partial delta is cut to what is missing),
    /// waiting for new ones, yielding <see cref="GenerationEvent.KeepAlive"/> during silences, and
    /// ending after the final event. Returns false when this log does not know the message.
    /// </summary>
    bool TryRead(Guid messageId, int fromOffset, TimeSpan keepAlive, CancellationToken cancellationToken, out IAsyncEnumerable<GenerationEvent> events);
}

public sealed class InProcessGenerationEventLog : IGenerationEventLog, IDisposable
{
    /// <summary>How long a finished log stays for late resumes; after that the database answers.</summary>
    private static readonly TimeSpan Retention = TimeSpan.FromMinutes(2);

    private readonly ConcurrentDictionary<Guid, Entry> _entries = new();
    private readonly Timer _sweeper;
    private readonly StreamDeadlines _deadlines;

    public InProcessGenerationEventLog(StreamDeadlines? deadlines = null)
    {
        _deadlines = deadlines ?? StreamDeadlines.Shared;
        _sweeper = new Timer(_ => Sweep(), null, TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(30));
    }

    public ValueTask BeginAsync(Guid messageId)
    {
        _entries.TryAdd(messageId, new Entry());
        return ValueTask.CompletedTask;
    }

    public ValueTask AppendDeltaAsync(Guid messageId, string text, int endOffset)
    {
        if (_entries.TryGetValue(messageId, out var e))
        {
            e.Add(new(GenerationEvent.Delta, endOffset.ToString(System.Globalization.CultureInfo.InvariantCulture), text), endOffset - text.Length);
        }
        return ValueTask.CompletedTask;
    }

    public ValueTask CompleteAsync(Guid messageId, GenerationEvent final)
    {
        if (_entries.TryGetValue(messageId, out var e))
        {
            e.Add(final, -1);
            e.CompletedAt = Environment.TickCount64;
        }
        return ValueTask.CompletedTask;
    }

    public bool TryRead(Guid messageId, int fromOffset, TimeSpan keepAlive, CancellationToken cancellationToken, out IAsyncEnumerable<GenerationEvent> events)
    {
        if (!_entries.TryGetValue(messageId, out var entry))
        {
            events = Empty();
            return false;
        }
        events = Read(entry, fromOffset, keepAlive, _deadlines, cancellationToken);
        return true;
    }

    private static async IAsyncEnumerable<GenerationEvent> Empty()
    {
        await Task.CompletedTask;
        yield break;
    }

    private static async IAsyncEnumerable<GenerationEvent> Read(
        Entry entry, int fromOffset, TimeSpan keepAlive, StreamDeadlines deadlines, [EnumeratorCancellation] CancellationToken ct)
    {
        var index = 0;
        while (true)
        {
            var (batch, changed) = entry.Snapshot(index);
            foreach (var (ev, start) in batch)
            {
                index++;
                if (ev.Type == GenerationEvent.Delta)
                {
                    var end = start + ev.Data.Length;
                    if (end <= fromOffset)
                    {
                        continue;
                    }
                    // Deltas carry raw text here; the SSE writer serialises it once per reader.
                    yield return start >= fromOffset ? ev : ev with { Data = ev.Data[(fromOffset - start)..] };
                }
                else
                {
                    yield return ev;
                    if (ev.IsFinal)
                    {
                        yield break;
                    }
                }
            }
            // A silence of keepAlive yields a keep-alive; the wait shares the one stream timer.
            if (batch.Count == 0 && !await deadlines.WaitAsync(changed, keepAlive, ct))
            {
                yield return new(GenerationEvent.KeepAlive, "", "");
            }
        }
    }

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

    private sealed class Entry
    {
        private readonly List<(GenerationEvent Event, int Start)> _events = [];
        private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly Lock _lock = new();

        public long? CompletedAt { get; set; }

        public void Add(GenerationEvent ev, int start)
        {
            TaskCompletionSource signal;
            lock (_lock)
            {
                _events.Add((ev, start));
                signal = _changed;
                _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
            }
            signal.TrySetResult();
        }

        public (List<(GenerationEvent, int)> Batch, Task Changed) Snapshot(int from)
        {
            lock (_lock)
            {
                return (from < _events.Count ? _events.GetRange(from, _events.Count - from) : [], _changed.Task);
            }
        }
    }
}
