using System.Collections.Concurrent;
using Jackcwf.Api.Data;

namespace Jackcwf.Api.Chat;

/// <summary>
/// The answers' final writes, group-committed: an answer that finishes while another answer's final write is in
/// flight is queued, and every answer queued meanwhile is written together as soon as that write returns, in one
/// statement (<see cref="BatchCommands.UpdateRowsAsync{T, TKey}"/>, up to <see cref="BatchCommands.MaxRows"/> rows):
/// one round trip, one transaction and one WAL flush for all of them. With none in flight an answer is written at
/// once, by its own caller, as the one-row statement it always was: no timer, no added wait.
/// Each answer learns whether its own row was found, and returns only once the statement that carried it has
/// committed (durably: synchronous commit), so what its caller does next (the JSON response, the slot release, the
/// event log's final event) still comes after its write.
/// </summary>
/// <remarks>
/// Hand-written because the queue has no consumer waiting on it: whichever caller finds no write in flight writes the
/// queue itself (a <see cref="ConcurrentQueue{T}"/> and one flag), which is what keeps a lone answer free of a thread
/// switch; a <c>Channel</c>'s reader loop would add one to every answer for an async wait this design never does.
/// </remarks>
internal sealed class FinalWrites(IServiceScopeFactory scopes, TimeProvider time, ILogger logger)
{
    /// <summary>Attempts before a final write's error is thrown to its caller.</summary>
    public const int Attempts = 20;

    private readonly ConcurrentQueue<Pending> _queue = new();
    private int _writing;

    /// <summary>
    /// Sets the message's columns to <paramref name="values"/> (absolute values: a retry is harmless) and returns
    /// whether its row was there. The first attempt goes with whatever else is finishing; when that statement fails,
    /// each of its answers is retried alone (so one answer's values that the database refuses fail only that answer),
    /// up to <see cref="Attempts"/> attempts with a growing delay, the last failure thrown.
    /// </summary>
    public async Task<bool> StoreAsync(Guid userId, Guid id, IReadOnlyList<(string Property, object? Value)> values)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return attempt == 1 ? await WithOthersAsync(userId, id, values) : await AloneAsync(id, values);
            }
            catch (Exception ex) when (attempt < Attempts)
            {
                logger.LogWarning("Storing the final state of {MessageId} failed (attempt {Attempt}): {Error}", id, attempt, ex.GetType().Name);
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(2000, 100 * attempt)), time);
            }
        }
    }

    private async Task<bool> AloneAsync(Guid id, IReadOnlyList<(string Property, object? Value)> values)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        return await BatchCommands.UpdateRowAsync<Message>(db, id, values, CancellationToken.None) > 0;
    }

    private async Task<bool> WithOthersAsync(Guid userId, Guid id, IReadOnlyList<(string Property, object? Value)> values)
    {
        var mine = new Pending(userId, id, values);
        _queue.Enqueue(mine);
        // Enqueued before looking at the flag, and the writer looks at the queue again after clearing it: an answer is
        // never left queued with nobody writing.
        if (Interlocked.CompareExchange(ref _writing, 1, 0) == 0)
        {
            await WriteQueuedAsync(mine);
        }
        return await mine.Stored.Task;
    }

    /// <summary>
    /// Writes the queue, batch after batch, while holding the flag. A caller writing for itself hands the rest over to
    /// the thread pool as soon as its own answer is stored, so it is not held up by answers that came after it.
    /// </summary>
    private async Task WriteQueuedAsync(Pending? mine)
    {
        while (true)
        {
            while (!_queue.IsEmpty)
            {
                if (mine is { Stored.Task.IsCompleted: true })
                {
                    _ = Task.Run(() => WriteQueuedAsync(null));
                    return;
                }
                await WriteBatchAsync();
            }
            Interlocked.Exchange(ref _writing, 0);
            if (_queue.IsEmpty || Interlocked.CompareExchange(ref _writing, 1, 0) != 0)
            {
                return;
            }
        }
    }

    /// <summary>One statement for up to <see cref="BatchCommands.MaxRows"/> queued answers; never throws (each answer gets the outcome).</summary>
    private async Task WriteBatchAsync()
    {
        var batch = new List<Pending>(Math.Min(_queue.Count, BatchCommands.MaxRows));
        while (batch.Count < BatchCommands.MaxRows && _queue.TryDequeue(out var p))
        {
            batch.Add(p);
        }
        if (batch.Count == 0)
        {
            return;
        }
        // In the order of their accounts: each row's trigger locks its account's storage counter (user_storage), and
        // statements of many rows (this one, the checkpoints, another replica's) that take those locks in one order
        // cannot deadlock on them.
        batch.Sort(static (a, b) => a.UserId.CompareTo(b.UserId));
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
            var stored = await BatchCommands.UpdateRowsAsync<Message, Guid>(db, batch.Select(p => (p.Id, p.Values)).ToArray(), CancellationToken.None);
            for (var i = 0; i < batch.Count; i++)
            {
                batch[i].Stored.TrySetResult(stored[i]);
            }
        }
        catch (Exception ex)
        {
            foreach (var p in batch)
            {
                p.Stored.TrySetException(ex);
            }
        }
    }

    private sealed class Pending(Guid userId, Guid id, IReadOnlyList<(string Property, object? Value)> values)
    {
        public Guid UserId { get; } = userId;

        public Guid Id { get; } = id;

        public IReadOnlyList<(string Property, object? Value)> Values { get; } = values;

        /// <summary>Its callers go on on the thread pool, not inside the writer that completes it.</summary>
        public TaskCompletionSource<bool> Stored { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
