using System.Collections.Concurrent;
using System.Globalization;
using Jackcwf.Api.Chat;
using StackExchange.Redis;

namespace Jackcwf.Api.Backplane;

/// <summary>
/// The event log across replicas: one Redis stream per running message, written in coalesced
/// batches, tailed by any replica. Generations running here are also kept in an in-process log, so
/// local readers never wait on Redis and a Redis outage costs nothing but cross-replica tailing.
/// </summary>
/// <remarks>
/// Stream entries carry <c>t</c> (type), <c>e</c> (character offset where the entry ends, the SSE id)
/// and <c>d</c> (text, or the final event's JSON). A writer always sends the text from the last offset
/// Redis acknowledged, so a failed write never leaves a hole; a reader that still finds one (Redis
/// restarted and lost the stream) reports a gap, which <see cref="GenerationStream"/> fills from the
/// database checkpoint, as it does whenever Redis fails or the owner stops writing (a killed replica).
/// Storage only: nothing here knows about the runner, the database or SSE.
/// </remarks>
internal sealed class RedisGenerationEventLog : IGenerationEventLog, IDisposable
{
    /// <summary>
    /// Deltas are gathered this long before one XADD, and the stream is first written this long after the answer's start
    /// (an answer that ends sooner is written with its final event, in one call).
    /// </summary>
    internal static readonly TimeSpan Coalesce = TimeSpan.FromMilliseconds(40);

    /// <summary>The process's one timer for every running answer's next batch.</summary>
    private static readonly BatchClock s_batches = new(TimeProvider.System, Coalesce);

    /// <summary>
    /// A running stream outlives a writer that died without finishing it, but not for long: its readers turn to the
    /// database once the writer falls silent, and once the lease sweeper has settled the answer there it shortens
    /// the stream's time to live to <see cref="FinishedTtl"/> (<see cref="AbandonAsync"/>): a crashed replica's running
    /// answers, about 15 KB each, stay about the lease, a sweep and 15 s, not this (they stayed an hour until the morning
    /// of 2026-12-06, then 5 minutes until the sweeper shortened them). A live writer renews it every
    /// <see cref="RenewTtlAfter"/> it writes; an answer silent for longer
    /// than the difference (a provider is cut off after PROVIDER_IDLE_TIMEOUT_SECONDS, 30 s by default) finds its
    /// stream gone at its next write and starts it again, and its readers fill the gap from the database.
    /// </summary>
    private static readonly TimeSpan RunningTtl = TimeSpan.FromMinutes(5);

    /// <summary>
    /// How long a finished stream stays for late resumes (a client reconnecting with its last event id, a reader on
    /// another replica reading the end); afterwards the database answers, as it does for any stream Redis lost, with
    /// the same events. A stream holds at least the 4 KB Redis preallocates for its first node and about 1.5 KB per
    /// second an answer streams (an entry per 40 ms batch), so how long finished ones stay is most of the log's
    /// memory: finished answers a second × this × their size (docs/deployment/capacity.md, "Redis memory";
    /// bench/redis_memory.py). It was 5 minutes until 2026-12-06: 20 times as much.
    /// </summary>
    private static readonly TimeSpan FinishedTtl = TimeSpan.FromSeconds(15);

    /// <summary>Readers re-read the stream this often even without a notification (one may be lost in a reconnect).</summary>
    private static readonly TimeSpan Poll = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Appends one entry. ARGV[4] is the time to live to set, or 0 to keep the one the stream has: then the
    /// entry is added only to a stream that exists (NOMKSTREAM), and a stream Redis lost is created again
    /// with <see cref="RunningTtl"/> (ARGV[6]), so no stream is ever left without one. ARGV[5] is 1 to
    /// notify readers; nobody can be subscribed before the first entry (readers subscribe to streams they found).
    /// </summary>
    private const string AppendScript = """
        local id = false
        if ARGV[4] == '0' then
          id = redis.call('XADD', KEYS[1], 'NOMKSTREAM', '*', 't', ARGV[1], 'e', ARGV[2], 'd', ARGV[3])
        end
        if not id then
          id = redis.call('XADD', KEYS[1], '*', 't', ARGV[1], 'e', ARGV[2], 'd', ARGV[3])
          redis.call('PEXPIRE', KEYS[1], ARGV[4] == '0' and ARGV[6] or ARGV[4])
        end
        if ARGV[5] == '1' then
          redis.call('PUBLISH', KEYS[2], ARGV[2])
        end
        return id
        """;

    /// <summary>
    /// The final event, after the text not written yet (ARGV[1] its end offset, '' when there is none, ARGV[2]
    /// the text) as one delta entry, in one call: the stream's time to live becomes ARGV[6] (the finished
    /// one) and readers are notified once. Readers see the same entries as from two calls.
    /// </summary>
    private const string FinalScript = """
        if ARGV[1] ~= '' then
          redis.call('XADD', KEYS[1], '*', 't', 'delta', 'e', ARGV[1], 'd', ARGV[2])
        end
        local id = redis.call('XADD', KEYS[1], '*', 't', ARGV[3], 'e', ARGV[4], 'd', ARGV[5])
        redis.call('PEXPIRE', KEYS[1], ARGV[6])
        redis.call('PUBLISH', KEYS[2], ARGV[4])
        return id
        """;

    /// <summary>A running stream's time to live is set again when it was last set this long ago (deltas in between leave it).</summary>
    private static readonly TimeSpan RenewTtlAfter = TimeSpan.FromMinutes(2);

    private readonly InProcessGenerationEventLog _local;
    private readonly StreamDeadlines _deadlines;
    private readonly ConcurrentDictionary<Guid, Writer> _writers = new();
    private readonly IConnectionMultiplexer _redis;
    private readonly RedisNotifications _notifications;
    private readonly ILogger<RedisGenerationEventLog> _logger;

    public RedisGenerationEventLog(
        IConnectionMultiplexer redis, RedisNotifications notifications, ILogger<RedisGenerationEventLog> logger, StreamDeadlines deadlines)
    {
        _deadlines = deadlines;
        _local = new(deadlines);
        _redis = redis;
        _notifications = notifications;
        _logger = logger;
    }

    internal static RedisKey StreamKey(Guid messageId) => $"jackcwf:gen:{messageId:N}";

    internal static RedisChannel NotifyChannel(Guid messageId) => RedisChannel.Literal($"jackcwf:gen:{messageId:N}:n");

    public async ValueTask BeginAsync(Guid messageId, AnswerText? text = null)
    {
        // One copy of the text, read by the local readers and by the writer's batches alike.
        text ??= new AnswerText();
        await _local.BeginAsync(messageId, text);
        var writer = new Writer(this, messageId, text);
        _writers[messageId] = writer;
        writer.Begin();
    }

    public async ValueTask AppendDeltaAsync(Guid messageId, string text, int endOffset)
    {
        await _local.AppendDeltaAsync(messageId, text, endOffset);
        if (_writers.TryGetValue(messageId, out var writer))
        {
            writer.Append();
        }
    }

    public async ValueTask CompleteAsync(Guid messageId, GenerationFinal final, Func<ValueTask>? before = null)
    {
        // The settlement first: its command is queued on the multiplexer before this returns (no await comes before it
        // on its path), and the final event's is queued behind it on the same connection without waiting for its
        // answer, so both go out together and Redis runs the settlement first: a replica reading the final event
        // from Redis reads it after the slot is free there.
        var settled = before is null ? ValueTask.CompletedTask : before();
        Task? remote = null;
        if (_writers.TryRemove(messageId, out var writer))
        {
            // Redis is read by every replica, including ones still on an earlier version during a
            // rolling update: they know only the SSE form of the final event (done/error), so that is
            // the form stored here. This version reads both forms.
            var (type, data) = SseWriter.FinalEvent(final);
            remote = writer.CompleteAsync(new GenerationEvent(type, final.Message.Content.Length.ToString(CultureInfo.InvariantCulture), data));
        }
        // This replica's readers see the end once the settlement is answered.
        await settled;
        await _local.CompleteAsync(messageId, final);
        if (remote is not null)
        {
            await remote;
        }
    }

    public async ValueTask AbandonAsync(IReadOnlyList<Guid> messageIds)
    {
        if (messageIds.Count == 0 || !_redis.IsConnected)
        {
            return;
        }
        var db = _redis.GetDatabase();
        var expiries = new List<Task>(messageIds.Count);
        foreach (var id in messageIds)
        {
            // A writer alive here keeps its stream: its lease ran out while it was (a stalled process), and it ends
            // the stream itself. PEXPIRE on a key that is gone does nothing.
            if (!_writers.ContainsKey(id))
            {
                expiries.Add(db.KeyExpireAsync(StreamKey(id), FinishedTtl));
            }
        }
        try
        {
            await Task.WhenAll(expiries);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            _logger.LogWarning("The event-log streams of {Count} interrupted answer(s) keep their running time to live ({Minutes} minutes): {Error}",
                expiries.Count, RunningTtl.TotalMinutes, ex.GetType().Name);
        }
    }

    public IGenerationLogReader? Open(Guid messageId, int fromOffset)
    {
        if (_local.Open(messageId, fromOffset) is { } local)
        {
            return local;
        }
        if (!_redis.IsConnected)
        {
            return null;
        }
        try
        {
            // Synchronous because opening is; one EXISTS on an open connection, bounded by SyncTimeout.
            if (!_redis.GetDatabase().KeyExists(StreamKey(messageId)))
            {
                return null;
            }
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            return null;
        }
        return new RemoteReader(this, messageId, fromOffset);
    }

    /// <summary>
    /// Tails another replica's stream from an offset. A failed read, or a hole in the text (Redis lost
    /// the stream's beginning, or its final event came with text missing before it), is a gap: the
    /// reader of the log fills it from the database.
    /// </summary>
    private sealed class RemoteReader(RedisGenerationEventLog owner, Guid messageId, int fromOffset) : IGenerationLogReader
    {
        private readonly RedisKey _key = StreamKey(messageId);
        private Task<RedisNotifications.Handle>? _watch;
        private string _last = "0-0";
        private int _sent = fromOffset;
        private bool _ended;

        public bool WriterIsLocal => false;

        public async ValueTask<LogBatch> ReadAsync(TimeSpan wait, CancellationToken ct)
        {
            if (_ended)
            {
                return LogBatch.Empty;
            }
            var watch = await (_watch ??= owner._notifications.WatchAsync(messageId));
            var signal = watch.Next;
            var batch = await ReadOnceAsync();
            if (batch is { Gap: false, Events.Count: 0 } && wait > TimeSpan.Zero)
            {
                await owner._deadlines.WaitAsync(signal, wait < Poll ? wait : Poll, ct);
                batch = await ReadOnceAsync();
            }
            return batch;
        }

        private async Task<LogBatch> ReadOnceAsync()
        {
            StreamEntry[] entries;
            try
            {
                entries = await owner._redis.GetDatabase().StreamRangeAsync(_key, "(" + _last, "+", 500);
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException)
            {
                return LogBatch.Lost;
            }
            var events = new List<GenerationEvent>();
            foreach (var entry in entries)
            {
                var type = entry["t"].ToString();
                var end = (int)entry["e"];
                var data = entry["d"].ToString();
                if (type == "b")
                {
                    _last = entry.Id.ToString();
                    continue;
                }
                if (type == GenerationEvent.Delta)
                {
                    var start = end - data.Length;
                    if (start > _sent)
                    {
                        return new LogBatch(events, Gap: true);
                    }
                    _last = entry.Id.ToString();
                    if (end > _sent)
                    {
                        events.Add(GenerationEvent.ForDelta(data[(_sent - start)..], end));
                        _sent = end;
                    }
                    continue;
                }
                if (end > _sent)
                {
                    return new LogBatch(events, Gap: true);
                }
                events.Add(new(type, entry["e"].ToString(), data));
                _ended = true;
                break;
            }
            return new LogBatch(events);
        }

        public void Dispose()
        {
            if (_watch is { } watch)
            {
                _ = watch.ContinueWith(t =>
                {
                    if (t.IsCompletedSuccessfully)
                    {
                        t.Result.Dispose();
                    }
                }, TaskScheduler.Default);
            }
        }
    }

    public void Dispose() => _local.Dispose();

    /// <summary>
    /// Writes one running message's stream: nothing at its start; its first write <see cref="Coalesce"/> after
    /// it creates the stream (with the running time to live) with the text so far, or an opening entry when
    /// there is none yet, so another replica finds the stream within <see cref="Coalesce"/> however slow the
    /// first token; then batches every <see cref="Coalesce"/>, each the answer's text (shared with the
    /// generation) from the last offset Redis acknowledged, and the final event with the text not written yet.
    /// An answer that ends within <see cref="Coalesce"/> of its start (a short or cached one, a demo model) is
    /// one call: its final call creates the stream with the text and the final event. A reader on another
    /// replica that comes in those first <see cref="Coalesce"/> finds no stream: it follows the database
    /// (<see cref="GenerationStream"/>) and opens the log on its next try.
    /// </summary>
    /// <remarks>
    /// Every wait, the first write's included, is one entry in the process's <see cref="BatchClock"/> (one timer for
    /// every running answer), not a timer of its own.
    /// </remarks>
    private sealed class Writer(RedisGenerationEventLog owner, Guid messageId, AnswerText text) : IBatchDue
    {
        // The scripts' two keys, made once per answer instead of two strings per batch (never changed: the
        // client may still read the array after the call returns).
        private readonly RedisKey[] _keys = [StreamKey(messageId), NotifyChannel(messageId).ToString()];
        private readonly Lock _lock = new();
        private readonly SemaphoreSlim _io = new(1, 1);
        private int _flushed;
        private bool _scheduled;
        private long _ttlSetAt;
        // Under _io: the stream exists (a first write was acknowledged); the final call was made (nothing after it).
        private bool _created;
        private bool _ended;

        /// <summary>Schedules the first write (nothing is written at the start; the first text joins this one).</summary>
        public void Begin()
        {
            lock (_lock)
            {
                _scheduled = true;
            }
            s_batches.Schedule(this);
        }

        /// <summary>The text grew: schedules a batch unless one is pending.</summary>
        public void Append()
        {
            lock (_lock)
            {
                if (_scheduled)
                {
                    return;
                }
                _scheduled = true;
            }
            s_batches.Schedule(this);
        }

        public async Task CompleteAsync(GenerationEvent final)
        {
            if (!owner._redis.IsConnected)
            {
                // Readers elsewhere settle from the database; the runner must not wait for Redis. A batch
                // still pending writes nothing now (it would create a running stream that never ends).
                Volatile.Write(ref _ended, true);
                return;
            }
            await _io.WaitAsync();
            try
            {
                _ended = true;
                // The text not written yet goes with the final event, in the same call (which creates the
                // stream when no batch has yet).
                var end = text.Length;
                var pending = end > _flushed ? text.Slice(_flushed, end) : null;
                if (await SendFinalAsync(pending is null ? null : end, pending, final))
                {
                    _flushed = end;
                }
            }
            finally
            {
                _io.Release();
            }
        }

        /// <summary>The batch's wait is over (<see cref="BatchClock"/>): the text gathered since goes out.</summary>
        public void Due()
        {
            lock (_lock)
            {
                _scheduled = false;
            }
            _ = FlushAsync();
        }

        /// <summary>Sends everything Redis has not acknowledged yet as one entry; false when Redis failed.</summary>
        private async Task<bool> FlushAsync()
        {
            await _io.WaitAsync();
            try
            {
                if (Volatile.Read(ref _ended))
                {
                    return true;
                }
                var end = text.Length;
                if (_created && end == _flushed)
                {
                    return true;
                }
                // The first write creates the stream with its running time to live: the text so far, or an opening entry
                // when there is none yet; nobody can be subscribed to it before (readers subscribe to streams they found).
                // A later delta keeps the stream's time to live unless it was set long ago (a long generation).
                var first = !_created;
                var renew = first || Environment.TickCount64 - Volatile.Read(ref _ttlSetAt) >= (long)RenewTtlAfter.TotalMilliseconds;
                var sent = end == _flushed
                    ? await SendAsync("b", 0, "", RunningTtl, notify: false)
                    : await SendAsync(GenerationEvent.Delta, end, text.Slice(_flushed, end), renew ? RunningTtl : TimeSpan.Zero, notify: !first);
                if (!sent)
                {
                    return false;
                }
                _created = true;
                _flushed = end;
                return true;
            }
            finally
            {
                _io.Release();
            }
        }

        private async Task<bool> SendFinalAsync(int? deltaEnd, string? delta, GenerationEvent final)
        {
            try
            {
                await owner._redis.GetDatabase().ScriptEvaluateAsync(FinalScript,
                    _keys,
                    [deltaEnd is { } e ? (RedisValue)e : "", delta ?? "", final.Type, final.Id, final.Data, (long)FinishedTtl.TotalMilliseconds]);
                return true;
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException)
            {
                owner._logger.LogDebug("Writing the end of {MessageId} to Redis failed: {Error}", messageId, ex.GetType().Name);
                return false;
            }
        }

        /// <summary>One entry; <paramref name="ttl"/> zero keeps the stream's time to live (see <see cref="AppendScript"/>).</summary>
        private async Task<bool> SendAsync(string type, int end, string data, TimeSpan ttl, bool notify = true)
        {
            if (!owner._redis.IsConnected)
            {
                return false;
            }
            try
            {
                var started = Environment.TickCount64;
                await owner._redis.GetDatabase().ScriptEvaluateAsync(AppendScript,
                    _keys,
                    [type, end, data, (long)ttl.TotalMilliseconds, notify ? 1 : 0, (long)RunningTtl.TotalMilliseconds]);
                if (ttl > TimeSpan.Zero)
                {
                    Volatile.Write(ref _ttlSetAt, started);
                }
                return true;
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException)
            {
                // The next batch carries this text again (it starts at the last acknowledged offset).
                owner._logger.LogDebug("Writing the stream of {MessageId} to Redis failed: {Error}", messageId, ex.GetType().Name);
                return false;
            }
        }
    }
}

/// <summary>
/// Wakes this replica's readers when a stream they tail grows: one Redis subscription per message
/// with local readers, shared by all of them and dropped with the last.
/// </summary>
internal sealed class RedisNotifications(IConnectionMultiplexer redis)
{
    private readonly Dictionary<Guid, Entry> _entries = new();
    private readonly Lock _lock = new();

    public async Task<Handle> WatchAsync(Guid messageId)
    {
        Entry entry;
        bool subscribe;
        lock (_lock)
        {
            subscribe = !_entries.TryGetValue(messageId, out entry!);
            if (subscribe)
            {
                entry = new Entry();
                _entries[messageId] = entry;
            }
            entry.Refs++;
        }
        if (subscribe)
        {
            try
            {
                await redis.GetSubscriber().SubscribeAsync(RedisGenerationEventLog.NotifyChannel(messageId), entry.OnMessage);
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException)
            {
                // Readers also poll, so a missing subscription only adds latency.
            }
        }
        return new Handle(this, messageId, entry);
    }

    private void Release(Guid messageId, Entry entry)
    {
        lock (_lock)
        {
            if (--entry.Refs > 0)
            {
                return;
            }
            _entries.Remove(messageId);
        }
        try
        {
            _ = redis.GetSubscriber().UnsubscribeAsync(RedisGenerationEventLog.NotifyChannel(messageId), entry.OnMessage)
                .ContinueWith(t => _ = t.Exception, TaskScheduler.Default);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            // Gone with the connection anyway.
        }
    }

    public sealed class Handle(RedisNotifications owner, Guid messageId, Entry entry) : IDisposable
    {
        private int _disposed;

        /// <summary>Completes at the next notification after this call.</summary>
        public Task Next => entry.Next;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                owner.Release(messageId, entry);
            }
        }
    }

    public sealed class Entry
    {
        private TaskCompletionSource _next = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int Refs { get; set; }

        public Task Next => Volatile.Read(ref _next).Task;

        public void OnMessage(RedisChannel channel, RedisValue value) =>
            Interlocked.Exchange(ref _next, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }
}
