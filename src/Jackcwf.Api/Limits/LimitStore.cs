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

    /// <summary>
    /// Admits one call in one store call (one Redis round trip instead of three or four): the request windows
    /// as <see cref="HitAllAsync"/>, then the month's budget (refused once the spend has reached it), then
    /// the slots as <see cref="TryEnterAsync"/> (all or none; the first <see cref="AdmissionRequest.SlotsBeforeSpend"/>
    /// of them are checked before the budget), then the spend reservation as
    /// <see cref="TryReserveSpendAsync"/>. A refused step changes nothing after the windows (which count
    /// the request, as a separate rate check before the others would). When the store does not hold the
    /// month's spend, the slots are still taken and the answer says <see cref="AdmissionStep.SpendNotSeeded"/>:
    /// the caller seeds the month from the ledger with <see cref="TryReserveSpendAsync"/>.
    /// This default composes the single steps; the Redis store runs them as one script.
    /// </summary>
    async ValueTask<Admission> AdmitAsync(AdmissionRequest request)
    {
        if (request.Rates.Count > 0 && await HitAllAsync(request.Rates, request.Window, request.CheckOnly) is { } refused)
        {
            return new(AdmissionStep.Rate, refused.Index, refused.Wait, null);
        }
        var seeded = false;
        var slots = new string[request.Slots.Count];
        // The budget is checked once, after the first SlotsBeforeSpend slots (after all of them when it names as many or more).
        var spendAt = Math.Min(request.SlotsBeforeSpend, slots.Length);
        for (var i = 0; i <= slots.Length; i++)
        {
            if (i == spendAt && request.Spend is { } spend)
            {
                var known = await GetSpendAsync(spend.UserId, spend.Month);
                if (known >= spend.Budget)
                {
                    await LeaveAllAsync(request.Slots, slots, i);
                    return new(AdmissionStep.Spend, 0, TimeSpan.Zero, null);
                }
                seeded = known is not null;
            }
            if (i == slots.Length)
            {
                break;
            }
            if (await TryEnterAsync(request.Slots[i].Bucket, request.Slots[i].Max) is not { } slot)
            {
                await LeaveAllAsync(request.Slots, slots, i);
                return new(AdmissionStep.Slot, i, TimeSpan.Zero, null);
            }
            slots[i] = slot;
        }
        if (request.Spend is { } reserve && seeded)
        {
            var outcome = await TryReserveSpendAsync(reserve.UserId, reserve.Month, reserve.Amount, reserve.Budget);
            if (outcome == ReserveOutcome.Refused)
            {
                await LeaveAllAsync(request.Slots, slots, slots.Length);
                return new(AdmissionStep.Spend, 0, TimeSpan.Zero, null);
            }
            seeded = outcome == ReserveOutcome.Reserved;
        }
        return new(request.Spend is null || seeded ? AdmissionStep.Admitted : AdmissionStep.SpendNotSeeded, 0, TimeSpan.Zero, slots);
    }

    private async ValueTask LeaveAllAsync(IReadOnlyList<(string Bucket, int Max)> buckets, string[] slots, int count)
    {
        for (var k = 0; k < count; k++)
        {
            await LeaveAsync(buckets[k].Bucket, slots[k]);
        }
    }
}

/// <summary>What <see cref="ILimitStore.AdmitAsync"/> checks and takes for one call.</summary>
/// <param name="Rates">Request windows sharing <paramref name="Window"/>; the first <paramref name="CheckOnly"/> are only checked.</param>
/// <param name="Slots">Concurrency slots to take, all or none.</param>
/// <param name="Spend">The most the call can cost, reserved against the month's budget; null for a free call.</param>
/// <param name="SlotsBeforeSpend">How many of <paramref name="Slots"/> (the first ones) are checked before the budget, the others after it.</param>
public sealed record AdmissionRequest(
    IReadOnlyList<(string Bucket, int Limit)> Rates, TimeSpan Window, int CheckOnly,
    IReadOnlyList<(string Bucket, int Max)> Slots, SpendAsk? Spend, int SlotsBeforeSpend = 0);

/// <summary>An amount to reserve from a user's month, refused once the spend has reached <paramref name="Budget"/> (null: no budget).</summary>
public readonly record struct SpendAsk(Guid UserId, string Month, decimal Amount, decimal? Budget);

public enum AdmissionStep
{
    /// <summary>Everything asked was taken.</summary>
    Admitted,
    /// <summary>Request window <see cref="Admission.Index"/> refused (nothing recorded); <see cref="Admission.Wait"/> until it allows one more.</summary>
    Rate,
    /// <summary>The month's budget is spent (no slot taken).</summary>
    Spend,
    /// <summary>Slot <see cref="Admission.Index"/> was full (none taken).</summary>
    Slot,
    /// <summary>Windows and slots taken; the store does not hold the month's spend: seed and reserve it next.</summary>
    SpendNotSeeded,
}

/// <summary>The answer of <see cref="ILimitStore.AdmitAsync"/>: the step that refused (or none) and the slots' ids when taken.</summary>
public readonly record struct Admission(AdmissionStep Step, int Index, TimeSpan Wait, string[]? Slots);

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
    private readonly ConcurrentDictionary<(Guid User, string Month), decimal> _spend = new();

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
        ValueTask.FromResult(_spend.TryGetValue((userId, month), out var v) ? v : (decimal?)null);

    public ValueTask<decimal> SeedSpendAsync(Guid userId, string month, decimal total) =>
        ValueTask.FromResult(_spend.GetOrAdd((userId, month), total));

    public ValueTask<ReserveOutcome> TryReserveSpendAsync(Guid userId, string month, decimal amount, decimal? budget, decimal? seed = null)
    {
        var key = (userId, month);
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
        var key = (userId, month);
        while (_spend.TryGetValue(key, out var v) && !_spend.TryUpdate(key, v + amount, v))
        {
        }
        return ValueTask.CompletedTask;
    }
}
