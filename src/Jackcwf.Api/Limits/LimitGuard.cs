using System.Globalization;
using Jackcwf.Api.Accounts;
using Jackcwf.Api.Ai;
using Jackcwf.Api.Data;
using Jackcwf.Api.Telemetry;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Limits;

/// <summary>
/// Applies the limits: requests per minute per user and per key, concurrent generations per user,
/// and the monthly budget. Counters live in <see cref="ILimitStore"/> (in-process or Redis); the
/// month-to-date spend is read from the ledger once per user and month (when the store does not hold it
/// yet), then kept in the store.
/// </summary>
public sealed class LimitGuard(
    ILimitStore store, IOptions<LimitsOptions> options, UserAccessCache access, IServiceScopeFactory scopes, JackcwfMetrics metrics,
    Usage.UsageLedger ledger, TimeProvider time, AuthThrottle throttle) : ISpendLimiter
{
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    public LimitsOptions Options => options.Value;

    private DateTime Now => time.GetUtcNow().UtcDateTime;

    public int MaxOutputTokens => options.Value.MaxOutputTokens;

    /// <summary>
    /// Counts the request in the account's window (and the key's). <paramref name="lockoutClient"/>: the
    /// address whose unknown-key lockout the authentication left to this step; it is checked first, in the
    /// same store call.
    /// </summary>
    public async ValueTask<LimitRefusal?> CheckRateAsync(Guid userId, Guid? keyId, string? lockoutClient = null)
    {
        var o = options.Value;
        var user = $"rate:user:{userId}";
        // One store call: the address's lockout first (only checked, never hit), then the account's window
        // and the key's. A request counts in both windows or (refused by any bucket) in neither, so
        // requests a key is refused do not use up the account's allowance.
        var gate = lockoutClient is null ? 0 : 1;
        var buckets = new List<(string Bucket, int Limit)>(3);
        if (lockoutClient is not null)
        {
            buckets.Add(throttle.ApiKeyFailureBucket(lockoutClient));
        }
        buckets.Add((user, o.RequestsPerMinutePerUser));
        if (keyId is { } key)
        {
            buckets.Add(($"rate:key:{key}", o.RequestsPerMinutePerKey));
        }
        if (await store.HitAllAsync(buckets, Minute, checkOnly: gate) is not { } refused)
        {
            return null;
        }
        if (refused.Index < gate)
        {
            return throttle.ApiKeyFailuresRefusal(refused.Wait);
        }
        if (refused.Index == gate)
        {
            metrics.LimitRefused("user_rate");
            return new("user_rate", refused.Wait, "Too many requests",
                $"This account is limited to {o.RequestsPerMinutePerUser} requests per minute. Try again in {Seconds(refused.Wait)} s.");
        }
        metrics.LimitRefused("key_rate");
        return new("key_rate", refused.Wait, "Too many requests",
            $"This API key is limited to {o.RequestsPerMinutePerKey} requests per minute. Try again in {Seconds(refused.Wait)} s.");
    }

    /// <summary>Requests without an account (share links) are counted per client address, at the per-user allowance.</summary>
    public async ValueTask<LimitRefusal?> CheckAnonymousRateAsync(System.Net.IPAddress ip)
    {
        var o = options.Value;
        if (await store.HitAsync($"rate:ip:{ip}", o.RequestsPerMinutePerUser, Minute) is { } wait)
        {
            metrics.LimitRefused("ip_rate");
            return new("ip_rate", wait, "Too many requests",
                $"Each client address is limited to {o.RequestsPerMinutePerUser} requests per minute without signing in. Try again in {Seconds(wait)} s.");
        }
        return null;
    }

    /// <summary>Checks the budget, then takes a concurrency slot; the caller disposes the slot when the generation ends.</summary>
    public async ValueTask<(GenerationSlot? Slot, LimitRefusal? Refusal)> AcquireGenerationAsync(Guid userId, ModelInfo model) =>
        await CheckBudgetAsync(userId, model) is { } refusal ? (null, refusal) : await TakeSlotAsync(userId);

    public async ValueTask<LimitRefusal?> CheckBudgetAsync(Guid userId, ModelInfo model)
    {
        var o = options.Value;
        var paid = model.InputPricePerMillionTokens > 0 || model.OutputPricePerMillionTokens > 0;
        if (!paid)
        {
            return null;
        }
        var budget = (await access.GetAsync(userId))?.MonthlyBudgetUsd ?? o.DefaultMonthlyBudgetUsd;
        if (budget is not { } b || await MonthlySpendAsync(userId) < b)
        {
            return null;
        }
        metrics.LimitRefused("budget");
        return BudgetRefusal(b);
    }

    private LimitRefusal BudgetRefusal(decimal budget)
    {
        var now = Now;
        var nextMonth = new DateTime(now.Year, now.Month, 1, 0, 0, 0, DateTimeKind.Utc).AddMonths(1);
        return new("budget", nextMonth - now, "Monthly budget reached",
            $"This account has spent its monthly budget of ${budget.ToString("0.00", CultureInfo.InvariantCulture)}. Free models still work; an administrator can raise the budget.");
    }

    public async ValueTask<(GenerationSlot? Slot, LimitRefusal? Refusal)> TakeSlotAsync(Guid userId)
    {
        var o = options.Value;
        var bucket = $"concurrency:user:{userId}";
        if (await store.TryEnterAsync(bucket, o.MaxConcurrentGenerationsPerUser) is not { } slot)
        {
            metrics.LimitRefused("concurrency");
            return (null, new("concurrency", TimeSpan.FromSeconds(1), "Too many answers at once",
                $"At most {o.MaxConcurrentGenerationsPerUser} answers can be generated at the same time per account. Wait for one to finish."));
        }
        return (new GenerationSlot(store, bucket, slot), null);
    }

    /// <summary>
    /// Takes one of the account's Server-Sent Event stream slots (chat answers, resumes and streamed /v1
    /// completions share them, across replicas when the store is Redis); the caller disposes the slot
    /// when the stream ends.
    /// </summary>
    public async ValueTask<(GenerationSlot? Slot, LimitRefusal? Refusal)> TakeStreamSlotAsync(Guid userId)
    {
        var o = options.Value;
        var bucket = $"streams:user:{userId}";
        if (await store.TryEnterAsync(bucket, o.MaxConcurrentStreamsPerUser) is not { } slot)
        {
            metrics.LimitRefused("streams");
            return (null, new("streams", TimeSpan.FromSeconds(2), "Too many open streams",
                $"At most {o.MaxConcurrentStreamsPerUser} answer streams (chat answers, resumes and streamed /v1 completions) can be open at the same time per account. Close one (or wait for an answer to finish) and try again."));
        }
        return (new GenerationSlot(store, bucket, slot), null);
    }

    public async ValueTask<decimal> MonthlySpendAsync(Guid userId)
    {
        var now = Now;
        var month = MonthKey(now);
        if (await store.GetSpendAsync(userId, month) is { } known)
        {
            return known;
        }
        return await store.SeedSpendAsync(userId, month, await LedgerSpendAsync(userId, now));
    }

    /// <summary>The ledger's month-to-date total for the user: what the store's figure for the month is seeded from.</summary>
    private async ValueTask<decimal> LedgerSpendAsync(Guid userId, DateTime now)
    {
        var start = MonthStart(now);
        // The seed reads the ledger: this replica's queued lines first. Another replica's queued lines (at most its
        // flush interval's) are missed only if the store lost the month's spend while they waited.
        await ledger.FlushAsync(CancellationToken.None);
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        // SQLite cannot SUM decimals in SQL; the rows of one user's month are few enough to add here.
        var costs = await db.UsageRecords.AsNoTracking().Where(u => u.UserId == userId && u.CreatedAt >= start).Select(u => u.CostUsd).ToListAsync();
        return costs.Sum();
    }

    /// <summary>
    /// Reserves <paramref name="maxCost"/> of the month's budget, atomically in the limit store: refused
    /// once the spend (reservations included) has reached the budget, so concurrent calls overshoot it
    /// by at most one call's maximum cost. Free calls reserve nothing. The store is asked directly; only
    /// when it does not hold the month yet (its first reservation, or the store lost it) is the ledger
    /// read, and the second ask seeds the month from it in the same atomic step.
    /// </summary>
    public async ValueTask<(SpendReservation? Reservation, LimitRefusal? Refusal)> ReserveSpendAsync(Guid userId, decimal maxCost)
    {
        if (maxCost <= 0)
        {
            return (new SpendReservation(userId, 0), null);
        }
        var budget = (await access.GetAsync(userId))?.MonthlyBudgetUsd ?? options.Value.DefaultMonthlyBudgetUsd;
        var now = Now;
        var month = MonthKey(now);
        var outcome = await store.TryReserveSpendAsync(userId, month, maxCost, budget);
        if (outcome == ReserveOutcome.NotSeeded)
        {
            outcome = await store.TryReserveSpendAsync(userId, month, maxCost, budget, seed: await LedgerSpendAsync(userId, now));
        }
        if (outcome == ReserveOutcome.Reserved)
        {
            return (new SpendReservation(userId, maxCost), null);
        }
        metrics.LimitRefused("budget");
        return (null, BudgetRefusal(budget!.Value));
    }

    /// <summary>Replaces the reservation by the call's real cost (and frees <paramref name="slot"/> in the same store call).</summary>
    public ValueTask SettleSpendAsync(SpendReservation reservation, decimal actualCost, GenerationSlot? slot = null)
    {
        SpendDelta? delta = actualCost == reservation.Amount ? null : new(reservation.UserId, MonthKey(Now), actualCost - reservation.Amount);
        if (slot is not null)
        {
            return slot.ReleaseAsync(delta);
        }
        return delta is { } d ? store.AddSpendAsync(d.UserId, d.Month, d.Amount) : ValueTask.CompletedTask;
    }

    public ValueTask AddSpendAsync(Guid userId, decimal cost) => store.AddSpendAsync(userId, MonthKey(Now), cost);

    public static string MonthKey(DateTime t) => t.ToString("yyyy-MM", CultureInfo.InvariantCulture);

    public static DateTime MonthStart(DateTime t) => new(t.Year, t.Month, 1, 0, 0, 0, DateTimeKind.Utc);

    private static int Seconds(TimeSpan t) => Math.Max(1, (int)Math.Ceiling(t.TotalSeconds));
}
