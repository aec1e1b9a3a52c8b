using System.Collections.Concurrent;

namespace Jackcwf.Api.Limits;

/// <summary>
/// Counters behind the limits. The in-process store serves one replica; the Redis store (backplane)
/// makes the same counters hold across replicas. Buckets are opaque strings such as <c>rate:user:{id}</c>.
/// </summary>
public interface ILimitStore
{
    /// <summary>Sliding-window hit: null when allowed, otherwise how long until one more would be.</summary>
    ValueTask<TimeSpan?> HitAsync(string bucket, int limit, TimeSpan window);

    /// <summary>
    /// One sliding-window hit on several buckets sharing a window, as one atomic step: recorded in every
    /// bucket only when each of them allows it, otherwise in none. Null when allowed, otherwise the
    /// index of the first refusing bucket (in the order given) and how long until it would allow one more.
    /// The first <paramref name="checkOnly"/> buckets are only checked, as by <see cref="PeekAsync"/>: a hit
    /// is never recorded in them.
    /// </summary>
    ValueTask<(int Index, TimeSpan Wait)?> HitAllAsync(IReadOnlyList<(string Bucket, int Limit)> buckets, TimeSpan window, int checkOnly = 0);

    /// <summary>Like <see cref="HitAsync"/> without recording a hit: null while fewer than <paramref name="limit"/> hits are in the window.</summary>
    ValueTask<TimeSpan?> PeekAsync(string bucket, int limit, TimeSpan window);

    /// <summary>Takes one of <paramref name="max"/> slots; returns the slot's id, or null when all are taken.</summary>
    ValueTask<string?> TryEnterAsync(string bucket, int max);

    /// <summary>Frees the slot; with <paramref name="spend"/>, also adds it to the month's spend as <see cref="AddSpendAsync"/> does, in the same step.</summary>
    ValueTask LeaveAsync(string bucket, string slot, SpendDelta? spend = null);

    /// <summary>Month-to-date spend, or null when this store has not seen the user this month.</summary>
    ValueTask<decimal?> GetSpendAsync(Guid userId, string month);

    /// <summary>Sets the spend if unknown (seeded from the ledger); returns the value now held.</summary>
    ValueTask<decimal> SeedSpendAsync(Guid userId, string month, decimal total);

    ValueTask AddSpendAsync(Guid userId, string month, decimal amount);

    /// <summary>
    /// Adds <paramref name="amount"/> to the spend unless it has already reached <paramref name="budget"/>
    /// (no budget: always), as one atomic step. When the store holds no spend for the month it answers
    /// <see cref="ReserveOutcome.NotSeeded"/> and changes nothing, unless <paramref name="seed"/> (the
    /// ledger's month-to-date total) is given: then the spend is set to it first, in the same step.
    /// </summary>
    ValueTask<ReserveOutcome> TryReserveSpendAsync(Guid userId, string month, decimal amount, decimal? budget, decimal? seed = null);
}

public enum ReserveOutcome
{
    Reserved,
    Refused,
    /// <summary>The store does not hold the month's spend yet (or lost it): seed it from the ledger and ask again.</summary>
    NotSeeded,
}

public sealed class InProcessLimitStore : ILimitStore
{
    private readonly ConcurrentDictionary<string, Queue<long>> _windows = new();
    private readonly ConcurrentDictionary<string, int> _inFlight = new();
    private readonly ConcurrentDictionary<string, decimal> _spend = new();

    public ValueTask<TimeSpan?> HitAsync(string bucket, int limit, TimeSpan window)
    {
        var now = Environment.TickCount64;
        var span = (long)window.TotalMilliseconds;
        var q = _windows.GetOrAdd(bucket, _ => new Queue<long>());
        lock (q)
        {
            if (Refusal(q, limit, now, span) is { } wait)
            {
                return ValueTask.FromResult<TimeSpan?>(wait);
            }
            q.Enqueue(now);
            return ValueTask.FromResult<TimeSpan?>(null);
        }
    }

    public ValueTask<(int Index, TimeSpan Wait)?> HitAllAsync(IReadOnlyList<(string Bucket, int Limit)> buckets, TimeSpan window, int checkOnly = 0)
    {
        var now = Environment.TickCount64;
        var span = (long)window.TotalMilliseconds;
        var queues = new Queue<long>[buckets.Count];
        for (var i = 0; i < queues.Length; i++)
        {
            queues[i] = _windows.GetOrAdd(buckets[i].Bucket, _ => new Queue<long>());
        }
        // Every bucket is held while deciding, so no other hit lands between the checks and the records;
        // the locks are taken in one global order (by bucket name), so two such calls never deadlock.
        var order = new int[queues.Length];
        var names = new string[queues.Length];
        for (var i = 0; i < order.Length; i++)
        {
            (order[i], names[i]) = (i, buckets[i].Bucket);
        }
        Array.Sort(names, order, StringComparer.Ordinal);
        var taken = 0;
        try
        {
            foreach (var i in order)
            {
                Monitor.Enter(queues[i]);
                taken++;
            }
            for (var i = 0; i < queues.Length; i++)
            {
                if (Refusal(queues[i], buckets[i].Limit, now, span) is { } wait)
                {
                    return ValueTask.FromResult<(int, TimeSpan)?>((i, wait));
                }
            }
            for (var i = checkOnly; i < queues.Length; i++)
            {
                queues[i].Enqueue(now);
            }
            return ValueTask.FromResult<(int, TimeSpan)?>(null);
        }
        finally
        {
            for (var k = taken - 1; k >= 0; k--)
            {
                Monitor.Exit(queues[order[k]]);
            }
        }
    }

    public ValueTask<TimeSpan?> PeekAsync(string bucket, int limit, TimeSpan window)
    {
        if (!_windows.TryGetValue(bucket, out var q))
        {
            return ValueTask.FromResult<TimeSpan?>(null);
        }
        lock (q)
        {
            return ValueTask.FromResult(Refusal(q, limit, Environment.TickCount64, (long)window.TotalMilliseconds));
        }
    }

    /// <summary>Drops the hits that left the window (the caller holds the queue's lock); the wait when <paramref name="limit"/> are left.</summary>
    private static TimeSpan? Refusal(Queue<long> q, int limit, long now, long span)
    {
        while (q.Count > 0 && q.Peek() <= now - span)
        {
            q.Dequeue();
        }
        return q.Count >= limit ? TimeSpan.FromMilliseconds(q.Peek() + span - now) : null;
    }

    public ValueTask<string?> TryEnterAsync(string bucket, int max)
    {
        while (true)
        {
            var current = _inFlight.GetOrAdd(bucket, 0);
            if (current >= max)
            {
                return ValueTask.FromResult<string?>(null);
            }
            if (_inFlight.TryUpdate(bucket, current + 1, current))
            {
                return ValueTask.FromResult<string?>("local");
            }
        }
    }

    public ValueTask LeaveAsync(string bucket, string slot, SpendDelta? spend = null)
    {
        _inFlight.AddOrUpdate(bucket, 0, (_, v) => Math.Max(0, v - 1));
        return spend is { } s ? AddSpendAsync(s.UserId, s.Month, s.Amount) : ValueTask.CompletedTask;
    }

    public ValueTask<decimal?> GetSpendAsync(Guid userId, string month) =>
        ValueTask.FromResult(_spend.TryGetValue($"{userId}:{month}", out var v) ? v : (decimal?)null);

    public ValueTask<decimal> SeedSpendAsync(Guid userId, string month, decimal total) =>
        ValueTask.FromResult(_spend.GetOrAdd($"{userId}:{month}", total));

    public ValueTask<ReserveOutcome> TryReserveSpendAsync(Guid userId, string month, decimal amount, decimal? budget, decimal? seed = null)
    {
        var key = $"{userId}:{month}";
        while (true)
        {
            if (!_spend.TryGetValue(key, out var v))
            {
                if (seed is not { } s)
                {
                    return ValueTask.FromResult(ReserveOutcome.NotSeeded);
                }
                v = _spend.GetOrAdd(key, s);
            }
            if (v >= budget)
            {
                return ValueTask.FromResult(ReserveOutcome.Refused);
            }
            if (_spend.TryUpdate(key, v + amount, v))
            {
                return ValueTask.FromResult(ReserveOutcome.Reserved);
            }
        }
    }

    public ValueTask AddSpendAsync(Guid userId, string month, decimal amount)
    {
        // Only months already seeded are tracked here; unseeded ones are read from the ledger on first use.
        var key = $"{userId}:{month}";
        while (_spend.TryGetValue(key, out var v) && !_spend.TryUpdate(key, v + amount, v))
        {
        }
        return ValueTask.CompletedTask;
    }
}
