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

    /// <summary>Like <see cref="HitAsync"/> without recording a hit: null while fewer than <paramref name="limit"/> hits are in the window.</summary>
    ValueTask<TimeSpan?> PeekAsync(string bucket, int limit, TimeSpan window);

    /// <summary>Takes one of <paramref name="max"/> slots; returns the slot's id, or null when all are taken.</summary>
    ValueTask<string?> TryEnterAsync(string bucket, int max);

    ValueTask LeaveAsync(string bucket, string slot);

    /// <summary>Month-to-date spend, or null when this store has not seen the user this month.</summary>
    ValueTask<decimal?> GetSpendAsync(Guid userId, string month);

    /// <summary>Sets the spend if unknown (seeded from the ledger); returns the value now held.</summary>
    ValueTask<decimal> SeedSpendAsync(Guid userId, string month, decimal total);

    ValueTask AddSpendAsync(Guid userId, string month, decimal amount);

    /// <summary>
    /// Adds <paramref name="amount"/> to the spend unless it has already reached <paramref name="budget"/>
    /// (no budget: always), as one atomic step; false when refused.
    /// </summary>
    ValueTask<bool> TryReserveSpendAsync(Guid userId, string month, decimal amount, decimal? budget);
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
            while (q.Count > 0 && q.Peek() <= now - span)
            {
                q.Dequeue();
            }
            if (q.Count >= limit)
            {
                return ValueTask.FromResult<TimeSpan?>(TimeSpan.FromMilliseconds(q.Peek() + span - now));
            }
            q.Enqueue(now);
            return ValueTask.FromResult<TimeSpan?>(null);
        }
    }

    public ValueTask<TimeSpan?> PeekAsync(string bucket, int limit, TimeSpan window)
    {
        if (!_windows.TryGetValue(bucket, out var q))
        {
            return ValueTask.FromResult<TimeSpan?>(null);
        }
        var now = Environment.TickCount64;
        var span = (long)window.TotalMilliseconds;
        lock (q)
        {
            while (q.Count > 0 && q.Peek() <= now - span)
            {
                q.Dequeue();
            }
            return ValueTask.FromResult<TimeSpan?>(q.Count >= limit ? TimeSpan.FromMilliseconds(q.Peek() + span - now) : null);
        }
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

    public ValueTask LeaveAsync(string bucket, string slot)
    {
        _inFlight.AddOrUpdate(bucket, 0, (_, v) => Math.Max(0, v - 1));
        return ValueTask.CompletedTask;
    }

    public ValueTask<decimal?> GetSpendAsync(Guid userId, string month) =>
        ValueTask.FromResult(_spend.TryGetValue($"{userId}:{month}", out var v) ? v : (decimal?)null);

    public ValueTask<decimal> SeedSpendAsync(Guid userId, string month, decimal total) =>
        ValueTask.FromResult(_spend.GetOrAdd($"{userId}:{month}", total));

    public ValueTask<bool> TryReserveSpendAsync(Guid userId, string month, decimal amount, decimal? budget)
    {
        var key = $"{userId}:{month}";
        while (true)
        {
            var v = _spend.GetOrAdd(key, 0m);
            if (v >= budget)
            {
                return ValueTask.FromResult(false);
            }
            if (_spend.TryUpdate(key, v + amount, v))
            {
                return ValueTask.FromResult(true);
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
