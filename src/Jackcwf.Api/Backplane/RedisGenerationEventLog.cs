using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using Jackcwf.Api.Chat;
using Jackcwf.Api.Data;
using Microsoft.EntityFrameworkCore;
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
/// restarted and lost the stream) fills it from the database checkpoint. Readers fall back to the
/// database whenever Redis fails and settle from it when the owner stops writing (a killed replica).
/// </remarks>
internal sealed class RedisGenerationEventLog : IGenerationEventLog, IDisposable
{
    /// <summary>Deltas after the first are gathered this long before one XADD.</summary>
    internal static readonly TimeSpan Coalesce = TimeSpan.FromMilliseconds(40);

    /// <summary>A running stream outlives a writer that died without finishing it, but not forever.</summary>
    private static readonly TimeSpan RunningTtl = TimeSpan.FromHours(1);

    /// <summary>How long a finished stream stays for late resumes; afterwards the database answers.</summary>
    private static readonly TimeSpan FinishedTtl = TimeSpan.FromMinutes(5);

    /// <summary>Readers re-read the stream this often even without a notification (one may be lost in a reconnect).</summary>
    private static readonly TimeSpan Poll = TimeSpan.FromSeconds(1);

    /// <summary>After this long without new text a reader asks the database whether the owner is still alive.</summary>
    private static readonly TimeSpan SilenceCheck = TimeSpan.FromSeconds(2);

    private const string AppendScript = """
        local id = redis.call('XADD', KEYS[1], '*', 't', ARGV[1], 'e', ARGV[2], 'd', ARGV[3])
        redis.call('PEXPIRE', KEYS[1], ARGV[4])
        redis.call('PUBLISH', KEYS[2], ARGV[2])
        return id
        """;

    private readonly InProcessGenerationEventLog _local;
    private readonly StreamDeadlines _deadlines;
    private readonly ConcurrentDictionary<Guid, Writer> _writers = new();
    private readonly IConnectionMultiplexer _redis;
    private readonly RedisNotifications _notifications;
    private readonly IServiceScopeFactory _scopes;
    private readonly IServiceProvider _services;
    private readonly ILogger<RedisGenerationEventLog> _logger;
    private GenerationRunner? _runner;

    public RedisGenerationEventLog(
        IConnectionMultiplexer redis, RedisNotifications notifications, IServiceScopeFactory scopes, IServiceProvider services,
        ILogger<RedisGenerationEventLog> logger, StreamDeadlines deadlines)
    {
        _deadlines = deadlines;
        _local = new(deadlines);
        _redis = redis;
        _notifications = notifications;
        _scopes = scopes;
        _services = services;
        _logger = logger;
    }

    internal static RedisKey StreamKey(Guid messageId) => $"jackcwf:gen:{messageId:N}";

    internal static RedisChannel NotifyChannel(Guid messageId) => RedisChannel.Literal($"jackcwf:gen:{messageId:N}:n");

    // Resolved on first use: the runner itself depends on this log.
    private GenerationRunner Runner => _runner ??= _services.GetRequiredService<GenerationRunner>();

    public async ValueTask BeginAsync(Guid messageId)
    {
        await _local.BeginAsync(messageId);
        var writer = new Writer(this, messageId);
        _writers[messageId] = writer;
        writer.Begin();
    }

    public async ValueTask AppendDeltaAsync(Guid messageId, string text, int endOffset)
    {
        await _local.AppendDeltaAsync(messageId, text, endOffset);
        if (_writers.TryGetValue(messageId, out var writer))
        {
            writer.Append(text);
        }
    }

    public async ValueTask CompleteAsync(Guid messageId, GenerationEvent final)
    {
        await _local.CompleteAsync(messageId, final);
        if (_writers.TryRemove(messageId, out var writer))
        {
            await writer.CompleteAsync(final);
        }
    }

    public bool TryRead(Guid messageId, int fromOffset, TimeSpan keepAlive, CancellationToken cancellationToken, out IAsyncEnumerable<GenerationEvent> events)
    {
        if (_local.TryRead(messageId, fromOffset, keepAlive, cancellationToken, out events))
        {
            return true;
        }
        if (!_redis.IsConnected)
        {
            return false;
        }
        try
        {
            // Synchronous because the interface is; one EXISTS on an open connection, bounded by SyncTimeout.
            if (!_redis.GetDatabase().KeyExists(StreamKey(messageId)))
            {
                return false;
            }
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            return false;
        }
        events = ReadRemoteAsync(messageId, fromOffset, keepAlive, cancellationToken);
        return true;
    }

    private async IAsyncEnumerable<GenerationEvent> ReadRemoteAsync(Guid messageId, int fromOffset, TimeSpan keepAlive, [EnumeratorCancellation] CancellationToken ct)
    {
        var key = StreamKey(messageId);
        var db = _redis.GetDatabase();
        using var watch = await _notifications.WatchAsync(messageId);
        var sent = fromOffset;
        var last = "0-0";
        var lastWrite = DateTime.UtcNow;
        var lastProgress = DateTime.UtcNow;
        var lastDbCheck = DateTime.MinValue;
        while (true)
        {
            if (Runner.IsShuttingDown)
            {
                // End without a final event: the client resumes on a replica that is not stopping.
                yield break;
            }
            var signal = watch.Next;
            StreamEntry[]? entries = null;
            try
            {
                entries = await db.StreamRangeAsync(key, "(" + last, "+", 500);
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException)
            {
                entries = null;
            }

            var needDatabase = entries is null;
            foreach (var entry in entries ?? [])
            {
                var type = entry["t"].ToString();
                var end = (int)entry["e"];
                var data = entry["d"].ToString();
                if (type == "b")
                {
                    last = entry.Id.ToString();
                    continue;
                }
                if (type == GenerationEvent.Delta)
                {
                    var start = end - data.Length;
                    if (start > sent)
                    {
                        // A hole (Redis lost the stream's beginning): the database checkpoint fills it.
                        needDatabase = true;
                        break;
                    }
                    last = entry.Id.ToString();
                    if (end <= sent)
                    {
                        continue;
                    }
                    yield return new(GenerationEvent.Delta, end.ToString(CultureInfo.InvariantCulture), data[(sent - start)..]);
                    sent = end;
                    lastWrite = lastProgress = DateTime.UtcNow;
                    continue;
                }
                if (end > sent)
                {
                    // The final event came but text is missing before it: the database has all of it now.
                    needDatabase = true;
                    break;
                }
                yield return new(type, entry["e"].ToString(), data);
                yield break;
            }

            var silent = DateTime.UtcNow - lastProgress >= SilenceCheck && DateTime.UtcNow - lastDbCheck >= SilenceCheck;
            if (needDatabase || silent)
            {
                lastDbCheck = DateTime.UtcNow;
                var stored = await LoadAsync(messageId, ct);
                if (stored is null)
                {
                    yield break;
                }
                if (stored.Content.Length > sent)
                {
                    yield return new(GenerationEvent.Delta, stored.Content.Length.ToString(CultureInfo.InvariantCulture), stored.Content[sent..]);
                    sent = stored.Content.Length;
                    lastWrite = lastProgress = DateTime.UtcNow;
                }
                if (stored.Status != MessageStatuses.Streaming)
                {
                    yield return StreamResult.StoredFinalEvent(stored);
                    yield break;
                }
                if (needDatabase)
                {
                    await _deadlines.Delay(TimeSpan.FromMilliseconds(250)).WaitAsync(ct);
                    continue;
                }
            }
            if (entries is { Length: > 0 })
            {
                continue;
            }

            var wait = keepAlive - (DateTime.UtcNow - lastWrite);
            if (wait <= TimeSpan.Zero)
            {
                yield return new(GenerationEvent.KeepAlive, "", "");
                lastWrite = DateTime.UtcNow;
                wait = keepAlive;
            }
            await _deadlines.WaitAsync(signal, wait < Poll ? wait : Poll, ct);
        }
    }

    private async Task<Message?> LoadAsync(Guid messageId, CancellationToken ct)
    {
        // A database blip must not end the stream: report "still running" and try again later.
        try
        {
            await using var scope = _scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
            return await db.Messages.AsNoTracking().FirstOrDefaultAsync(m => m.Id == messageId, ct);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            _logger.LogWarning("Reading message {MessageId} for a stream failed: {Error}", messageId, ex.GetType().Name);
            return new Message { Id = messageId, Status = MessageStatuses.Streaming, Content = "" };
        }
    }

    public void Dispose() => _local.Dispose();

    /// <summary>Writes one running message's stream: first delta at once, then batches every <see cref="Coalesce"/>.</summary>
    private sealed class Writer(RedisGenerationEventLog owner, Guid messageId)
    {
        private readonly StringBuilder _text = new();
        private readonly Lock _lock = new();
        private readonly SemaphoreSlim _io = new(1, 1);
        private int _flushed;
        private bool _scheduled;
        private bool _first = true;

        public void Begin() => _ = WriteAsync("b", 0, "", RunningTtl);

        public void Append(string delta)
        {
            bool immediate;
            lock (_lock)
            {
                _text.Append(delta);
                if (_scheduled)
                {
                    return;
                }
                _scheduled = true;
                immediate = _first;
                _first = false;
            }
            _ = FlushLaterAsync(immediate ? TimeSpan.Zero : Coalesce);
        }

        public async Task CompleteAsync(GenerationEvent final)
        {
            if (!owner._redis.IsConnected)
            {
                // Readers elsewhere settle from the database; the runner must not wait for Redis.
                return;
            }
            if (await FlushAsync())
            {
                await WriteAsync(final.Type, int.Parse(final.Id, CultureInfo.InvariantCulture), final.Data, FinishedTtl);
            }
        }

        private async Task FlushLaterAsync(TimeSpan delay)
        {
            if (delay > TimeSpan.Zero)
            {
                await Task.Delay(delay);
            }
            lock (_lock)
            {
                _scheduled = false;
            }
            await FlushAsync();
        }

        /// <summary>Sends everything Redis has not acknowledged yet as one entry; false when Redis failed.</summary>
        private async Task<bool> FlushAsync()
        {
            await _io.WaitAsync();
            try
            {
                string chunk;
                int end;
                lock (_lock)
                {
                    end = _text.Length;
                    if (end == _flushed)
                    {
                        return true;
                    }
                    chunk = _text.ToString(_flushed, end - _flushed);
                }
                if (!await SendAsync(GenerationEvent.Delta, end, chunk, RunningTtl))
                {
                    return false;
                }
                _flushed = end;
                return true;
            }
            finally
            {
                _io.Release();
            }
        }

        private async Task<bool> WriteAsync(string type, int end, string data, TimeSpan ttl)
        {
            await _io.WaitAsync();
            try
            {
                return await SendAsync(type, end, data, ttl);
            }
            finally
            {
                _io.Release();
            }
        }

        private async Task<bool> SendAsync(string type, int end, string data, TimeSpan ttl)
        {
            if (!owner._redis.IsConnected)
            {
                return false;
            }
            try
            {
                await owner._redis.GetDatabase().ScriptEvaluateAsync(AppendScript,
                    [StreamKey(messageId), NotifyChannel(messageId).ToString()],
                    [type, end, data, (long)ttl.TotalMilliseconds]);
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
