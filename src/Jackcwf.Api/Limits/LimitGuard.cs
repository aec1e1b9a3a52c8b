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
        var buckets = RateBuckets(userId, keyId, lockoutClient, out var gate);
        return await store.HitAllAsync(buckets, Minute, checkOnly: gate) is { } refused ? RateRefusal(refused.Index, refused.Wait, gate) : null;
    }

    /// <summary>
    /// The buckets of one request, in one store call: the address's lockout first (only checked, never
    /// hit; <paramref name="gate"/> is 1 then), then the account's window and the key's. A request counts
    /// in both windows or (refused by any bucket) in neither, so requests a key is refused do not use up
    /// the account's allowance.
    /// </summary>
    private List<(string Bucket, int Limit)> RateBuckets(Guid userId, Guid? keyId, string? lockoutClient, out int gate)
    {
        var o = options.Value;
        gate = lockoutClient is null ? 0 : 1;
        var buckets = new List<(string Bucket, int Limit)>(3);
        if (lockoutClient is not null)
        {
            buckets.Add(throttle.ApiKeyFailureBucket(lockoutClient));
        }
        buckets.Add((BucketNames.Get(BucketNames.UserRate, userId), o.RequestsPerMinutePerUser));
        if (keyId is { } key)
        {
            buckets.Add((BucketNames.Get(BucketNames.KeyRate, key), o.RequestsPerMinutePerKey));
        }
        return buckets;
    }

    private LimitRefusal RateRefusal(int index, TimeSpan wait, int gate)
    {
        var o = options.Value;
        if (index < gate)
        {
            return throttle.ApiKeyFailuresRefusal(wait);
        }
        if (index == gate)
        {
            metrics.LimitRefused("user_rate");
            return new("user_rate", wait, "Too many requests",
                $"This account is limited to {o.RequestsPerMinutePerUser} requests per minute. Try again in {Seconds(wait)} s.");
        }
        metrics.LimitRefused("key_rate");
        return new("key_rate", wait, "Too many requests",
            $"This API key is limited to {o.RequestsPerMinutePerKey} requests per minute. Try again in {Seconds(wait)} s.");
    }

    /// <summary>
    /// Admits one /v1 chat completion in one store call (one Redis round trip instead of three or four):
    /// the request windows (as <see cref="CheckRateAsync"/>; the middleware leaves them to this step on
    /// that route), the month's budget, the account's stream slot (<paramref name="stream"/>) and a
    /// generation slot, and the reservation of <paramref name="maxCost"/> (as <see cref="ReserveSpendAsync"/>).
    /// Refused, nothing is held; admitted, the caller releases the slots when the response ends and the
    /// budget step of the pipeline settles the reservation. The settlement frees the generation slot and
    /// (a stream) the stream slot together, in one round trip, once the provider's answer has ended; a
    /// stream whose client leaves first frees its slot then.
    /// </summary>
    public async ValueTask<CallAdmission> AdmitCallAsync(Guid userId, Guid? keyId, string? lockoutClient, bool stream, decimal maxCost)
    {
        var admission = await AdmitAsync(userId, keyId, lockoutClient, stream, generate: true, maxCost, streamBeforeBudget: false);
        if (admission is { StreamSlot: { } streamSlot, Slot: { } slot })
        {
            slot.FreeTogetherWith(streamSlot);
        }
        return admission;
    }

    /// <summary>
    /// Admits one chat turn in one store call, as <see cref="AdmitCallAsync"/> (the middleware leaves the
    /// send route's request windows to the turn), in the order a turn always checked its limits: the
    /// request windows, the account's stream slot (<paramref name="stream"/>), the month's budget (with
    /// <paramref name="maxCost"/> reserved; 0 for a turn whose budget the pipeline reserves), then a
    /// generation slot.
    /// </summary>
    public ValueTask<CallAdmission> AdmitTurnAsync(Guid userId, Guid? keyId, string? lockoutClient, bool stream, decimal maxCost) =>
        AdmitAsync(userId, keyId, lockoutClient, stream, generate: true, maxCost, streamBeforeBudget: true);

    /// <summary>
    /// A chat answer that generates nothing (a refusal, a replay): counts the request in its windows and,
    /// for a stream (<paramref name="stream"/>), takes the account's stream slot, in one store call.
    /// </summary>
    public ValueTask<CallAdmission> AdmitAnswerAsync(Guid userId, Guid? keyId, string? lockoutClient, bool stream) =>
        AdmitAsync(userId, keyId, lockoutClient, stream, generate: false, 0, streamBeforeBudget: true);

    private async ValueTask<CallAdmission> AdmitAsync(
        Guid userId, Guid? keyId, string? lockoutClient, bool stream, bool generate, decimal maxCost, bool streamBeforeBudget)
    {
        var o = options.Value;
        var rates = RateBuckets(userId, keyId, lockoutClient, out var gate);
        var slots = new List<(string Bucket, int Max)>(2);
        if (stream)
        {
            slots.Add((BucketNames.Get(BucketNames.UserStreams, userId), o.MaxConcurrentStreamsPerUser));
        }
        if (generate)
        {
            slots.Add((BucketNames.Get(BucketNames.UserConcurrency, userId), o.MaxConcurrentGenerationsPerUser));
        }
        var now = Now;
        decimal? budget = null;
        SpendAsk? spend = null;
        if (maxCost > 0)
        {
            budget = (await access.GetAsync(userId))?.MonthlyBudgetUsd ?? o.DefaultMonthlyBudgetUsd;
            spend = new SpendAsk(userId, MonthKey(now), maxCost, budget);
        }
        var admission = await store.AdmitAsync(new AdmissionRequest(rates, Minute, gate, slots, spend, stream && streamBeforeBudget ? 1 : 0));
        switch (admission.Step)
        {
            case AdmissionStep.Rate:
                return new(null, null, null, RateRefusal(admission.Index, admission.Wait, gate));
            case AdmissionStep.Spend:
                metrics.LimitRefused("budget");
                return new(null, null, null, BudgetRefusal(budget!.Value));
            case AdmissionStep.Slot:
                return new(null, null, null, stream && admission.Index == 0 ? StreamsRefusal() : ConcurrencyRefusal());
        }
        var held = new GenerationSlot[slots.Count];
        for (var i = 0; i < held.Length; i++)
        {
            held[i] = new GenerationSlot(store, slots[i].Bucket, admission.Slots![i]);
        }
        if (admission.Step == AdmissionStep.SpendNotSeeded)
        {
            ReserveOutcome reserved;
            try
            {
                reserved = await store.TryReserveSpendAsync(userId, spend!.Value.Month, maxCost, budget, seed: await LedgerSpendAsync(userId, now));
            }
            catch
            {
                // The ledger's read failed (the database unreachable): the slots go back before the error does. A
                // replica renews the leases of the slots it holds, so a slot nobody frees would count until it stops.
                await FreeAsync(held);
                throw;
            }
            if (reserved != ReserveOutcome.Reserved)
            {
                await FreeAsync(held);
                metrics.LimitRefused("budget");
                return new(null, null, null, BudgetRefusal(budget!.Value));
            }
        }
        return new(stream ? held[0] : null, generate ? held[^1] : null, new SpendReservation(userId, maxCost), null);

        static async ValueTask FreeAsync(GenerationSlot[] slots)
        {
            foreach (var slot in slots)
            {
                await slot.DisposeAsync();
            }
        }
    }

    /// <summary>
    /// Gives back what an admission took when its call does not run after all: the slots, and the
    /// reservation (settled to nothing, in the same store call as the generation slot).
    /// </summary>
    public async ValueTask ReleaseAsync(CallAdmission admission)
    {
        if (admission.StreamSlot is { } streamSlot)
        {
            await streamSlot.DisposeAsync();
        }
        if (admission.Reservation is { } reservation)
        {
            await SettleSpendAsync(reservation, 0, admission.Slot);
        }
        else if (admission.Slot is { } slot)
        {
            await slot.DisposeAsync();
        }
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
        var bucket = BucketNames.Get(BucketNames.UserConcurrency, userId);
        if (await store.TryEnterAsync(bucket, o.MaxConcurrentGenerationsPerUser) is not { } slot)
        {
            return (null, ConcurrencyRefusal());
        }
        return (new GenerationSlot(store, bucket, slot), null);
    }

    private LimitRefusal ConcurrencyRefusal()
    {
        metrics.LimitRefused("concurrency");
        return new("concurrency", TimeSpan.FromSeconds(1), "Too many answers at once",
            $"At most {options.Value.MaxConcurrentGenerationsPerUser} answers can be generated at the same time per account. Wait for one to finish.");
    }

    /// <summary>
    /// Takes one of the account's Server-Sent Event stream slots (chat answers, resumes and streamed /v1
    /// completions share them, across replicas when the store is Redis); the caller disposes the slot
    /// when the stream ends.
    /// </summary>
    public async ValueTask<(GenerationSlot? Slot, LimitRefusal? Refusal)> TakeStreamSlotAsync(Guid userId)
    {
        var o = options.Value;
        var bucket = BucketNames.Get(BucketNames.UserStreams, userId);
        if (await store.TryEnterAsync(bucket, o.MaxConcurrentStreamsPerUser) is not { } slot)
        {
            return (null, StreamsRefusal());
        }
        return (new GenerationSlot(store, bucket, slot), null);
    }

    private LimitRefusal StreamsRefusal()
    {
        metrics.LimitRefused("streams");
        return new("streams", TimeSpan.FromSeconds(2), "Too many open streams",
            $"At most {options.Value.MaxConcurrentStreamsPerUser} answer streams (chat answers, resumes and streamed /v1 completions) can be open at the same time per account. Close one (or wait for an answer to finish) and try again.");
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

    public static string MonthKey(DateTime t)
    {
        // The same month's key every call (one string a month, not one a request).
        var last = s_month;
        if (last.Year == t.Year && last.Month == t.Month)
        {
            return last.Key;
        }
        var key = t.ToString("yyyy-MM", CultureInfo.InvariantCulture);
        s_month = new MonthKeyEntry(t.Year, t.Month, key);
        return key;
    }

    private sealed record MonthKeyEntry(int Year, int Month, string Key);

    private static MonthKeyEntry s_month = new(0, 0, "");

    public static DateTime MonthStart(DateTime t) => new(t.Year, t.Month, 1, 0, 0, 0, DateTimeKind.Utc);

    private static int Seconds(TimeSpan t) => Math.Max(1, (int)Math.Ceiling(t.TotalSeconds));
}

/// <summary>
/// The outcome of <see cref="LimitGuard.AdmitCallAsync"/>: the held slots and the reservation, or the refusal.
/// </summary>
public sealed record CallAdmission(GenerationSlot? StreamSlot, GenerationSlot? Slot, SpendReservation? Reservation, LimitRefusal? Refusal);
