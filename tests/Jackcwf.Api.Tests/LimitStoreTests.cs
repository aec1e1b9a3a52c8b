using Jackcwf.Api.Accounts;
using Jackcwf.Api.Data;
using Jackcwf.Api.Limits;
using Jackcwf.Api.Telemetry;
using Jackcwf.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace Jackcwf.Api.Tests;

/// <summary>
/// The limit counters' contract, held the same by the in-process store, the Redis store (shared by
/// every replica) and the Redis store with Redis down (each replica falls back to its own counters):
/// the user and key windows are hit in one step, recorded in both or in neither; a month the store
/// does not hold yet is seeded from the ledger by the reservation itself.
/// </summary>
public sealed class LimitStoreTests : IAsyncLifetime
{
    public enum Store { InProcess, Redis, RedisDown }

    private static readonly CancellationToken Ct = TestContext.Current.CancellationToken;
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);
    private const int UserPerMinute = 5;
    private const int KeyPerMinute = 2;
    private const decimal Budget = 0.01m;
    private readonly string _dbPath = Path.Combine(Path.GetTempPath(), $"jackcwf-limits-{Guid.NewGuid():N}.db");
    private readonly Guid _userId = Guid.NewGuid();
    private ServiceProvider _services = null!;
    private TestRedisDatabase? _redisDb;
    private ConnectionMultiplexer? _redis;

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    private async Task<(ILimitStore Store, LimitGuard Guard)> StartAsync(Store kind)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            [DatabaseOptions.UrlKey] = "sqlite:///" + _dbPath,
            ["Limits:RequestsPerMinutePerUser"] = UserPerMinute.ToString(),
            ["Limits:RequestsPerMinutePerKey"] = KeyPerMinute.ToString(),
        });
        builder.Services.AddSingleton<Jackcwf.ServiceDefaults.DrainState>();
        builder.AddTelemetry();
        builder.AddData();
        builder.AddAccounts();
        builder.AddLimits();
        builder.Services.AddSingleton<Usage.UsageLedger>();
        if (kind != Store.InProcess)
        {
            if (kind == Store.Redis)
            {
                _redisDb = await TestRedis.CreateDatabaseAsync(Ct);
                _redis = await ConnectionMultiplexer.ConnectAsync(_redisDb.Configuration);
            }
            else
            {
                // Nothing listens there: every Redis command fails, and the store counts on this replica. Commands
                // fail at once, as the service's connection makes them (BacklogPolicy.FailFast), not after a timeout.
                var down = ConfigurationOptions.Parse($"127.0.0.1:{FreePort.Get()},abortConnect=false,connectTimeout=200,syncTimeout=200,asyncTimeout=200");
                down.BacklogPolicy = BacklogPolicy.FailFast;
                _redis = await ConnectionMultiplexer.ConnectAsync(down);
            }
            builder.Services.AddSingleton<IConnectionMultiplexer>(_redis);
            builder.Services.Replace(ServiceDescriptor.Singleton<ILimitStore, RedisLimitStore>());
        }
        _services = builder.Services.BuildServiceProvider();
        await using var scope = _services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        await DataExtensions.MigrateAsync(db, NullLogger.Instance, Ct);
        db.Users.Add(new AppUser { Id = _userId, UserName = "limits@example.com", Email = "limits@example.com", MonthlyBudgetUsd = Budget });
        await db.SaveChangesAsync(Ct);
        return (_services.GetRequiredService<ILimitStore>(), _services.GetRequiredService<LimitGuard>());
    }

    public async ValueTask DisposeAsync()
    {
        if (_services is not null)
        {
            await _services.DisposeAsync();
        }
        if (_redis is not null)
        {
            await _redis.DisposeAsync();
        }
        if (_redisDb is not null)
        {
            await _redisDb.DisposeAsync();
        }
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        foreach (var file in Directory.GetFiles(Path.GetTempPath(), Path.GetFileName(_dbPath) + "*"))
        {
            File.Delete(file);
        }
    }

    [Theory]
    [InlineData(Store.InProcess)]
    [InlineData(Store.Redis)]
    [InlineData(Store.RedisDown)]
    public async Task Requests_a_key_is_refused_do_not_use_up_the_account_allowance(Store kind)
    {
        var (_, guard) = await StartAsync(kind);
        var key = Guid.NewGuid();
        for (var i = 0; i < KeyPerMinute; i++)
        {
            Assert.Null(await guard.CheckRateAsync(_userId, key));
        }
        for (var i = 0; i < UserPerMinute; i++)
        {
            var refused = await guard.CheckRateAsync(_userId, key);
            Assert.Equal("key_rate", refused?.Limit);
            Assert.Contains($"limited to {KeyPerMinute} requests per minute", refused!.Detail);
            Assert.InRange(refused.RetryAfterSeconds, 1, 60);
        }
        // The account counted the key's allowed requests only: the rest of its allowance is left (a session, no key).
        for (var i = KeyPerMinute; i < UserPerMinute; i++)
        {
            Assert.Null(await guard.CheckRateAsync(_userId, null));
        }
        Assert.Equal("user_rate", (await guard.CheckRateAsync(_userId, null))?.Limit);
        // Refused by the account's window, a request does not count in another key's window either.
        var other = Guid.NewGuid();
        Assert.Equal("user_rate", (await guard.CheckRateAsync(_userId, other))?.Limit);
        var store = _services.GetRequiredService<ILimitStore>();
        Assert.Null(await store.PeekAsync($"rate:key:{other}", 1, Minute));
    }

    [Theory]
    [InlineData(Store.InProcess)]
    [InlineData(Store.Redis)]
    [InlineData(Store.RedisDown)]
    public async Task A_hit_on_several_buckets_is_recorded_in_all_or_none_and_names_the_refusing_one(Store kind)
    {
        var (store, _) = await StartAsync(kind);
        string a = $"test:a:{Guid.NewGuid()}", b = $"test:b:{Guid.NewGuid()}";
        Assert.Null(await store.HitAllAsync([(a, 3), (b, 1)], Minute));
        var refused = await store.HitAllAsync([(a, 3), (b, 1)], Minute);
        Assert.Equal(1, refused?.Index);
        Assert.InRange(refused!.Value.Wait, TimeSpan.FromMilliseconds(1), Minute);
        // The refused hit was not recorded in a: one hit, not two.
        Assert.Null(await store.PeekAsync(a, 2, Minute));
        Assert.NotNull(await store.PeekAsync(a, 1, Minute));
        // The first refusing bucket, in the order given.
        Assert.Equal(0, (await store.HitAllAsync([(a, 1), (b, 1)], Minute))?.Index);

        // Concurrent hits: exactly the limit of the tighter window gets through, and both windows hold exactly those.
        string c = $"test:c:{Guid.NewGuid()}", d = $"test:d:{Guid.NewGuid()}";
        var results = await Task.WhenAll(Enumerable.Range(0, 20).Select(async _ => await store.HitAllAsync([(c, 7), (d, 100)], Minute)));
        Assert.Equal(7, results.Count(r => r is null));
        Assert.All(results.Where(r => r is not null), r => Assert.Equal(0, r!.Value.Index));
        Assert.Null(await store.PeekAsync(d, 8, Minute));
        Assert.NotNull(await store.PeekAsync(d, 7, Minute));
    }

    [Theory]
    [InlineData(Store.InProcess)]
    [InlineData(Store.Redis)]
    [InlineData(Store.RedisDown)]
    public async Task Releasing_a_slot_with_its_settlement_frees_the_slot_and_applies_the_cost_once(Store kind)
    {
        var (store, guard) = await StartAsync(kind);
        var user = Guid.NewGuid();
        var (slot, refusal) = await guard.TakeSlotAsync(user);
        Assert.Null(refusal);
        Assert.NotNull(slot);
        var (reservation, _) = await guard.ReserveSpendAsync(user, 0.01m);
        Assert.NotNull(reservation);
        var month = LimitGuard.MonthKey(DateTime.UtcNow);
        Assert.Equal(0.01m, await store.GetSpendAsync(user, month));

        await guard.SettleSpendAsync(reservation!, 0.004m, slot);
        Assert.Equal(0.004m, await store.GetSpendAsync(user, month));
        // The slot is free again: as many can be taken as the limit allows, then no more.
        var max = guard.Options.MaxConcurrentGenerationsPerUser;
        var taken = new List<GenerationSlot>();
        for (var i = 0; i < max; i++)
        {
            var (s, r) = await guard.TakeSlotAsync(user);
            Assert.Null(r);
            taken.Add(s!);
        }
        Assert.NotNull((await guard.TakeSlotAsync(user)).Refusal);
        // The caller's own release after it does nothing more: the slot was freed once.
        await slot!.DisposeAsync();
        Assert.NotNull((await guard.TakeSlotAsync(user)).Refusal);
        // A second settlement on a freed slot still applies its cost.
        await slot.ReleaseAsync(new SpendDelta(user, month, 0.001m));
        Assert.Equal(0.005m, await store.GetSpendAsync(user, month));
        foreach (var s in taken)
        {
            await s.DisposeAsync();
        }
    }

    [Theory]
    [InlineData(Store.InProcess)]
    [InlineData(Store.Redis)]
    [InlineData(Store.RedisDown)]
    public async Task Leading_check_only_buckets_refuse_without_ever_being_hit(Store kind)
    {
        var (store, _) = await StartAsync(kind);
        string gate = $"test:gate:{Guid.NewGuid()}", a = $"test:a:{Guid.NewGuid()}";
        // Allowed: recorded in a, not in the gate.
        Assert.Null(await store.HitAllAsync([(gate, 2), (a, 10)], Minute, checkOnly: 1));
        Assert.Null(await store.PeekAsync(gate, 1, Minute));
        Assert.NotNull(await store.PeekAsync(a, 1, Minute));
        // Once the gate's own window is full (hits recorded elsewhere), it refuses first and a is not hit.
        await store.HitAsync(gate, int.MaxValue, Minute);
        await store.HitAsync(gate, int.MaxValue, Minute);
        var refused = await store.HitAllAsync([(gate, 2), (a, 10)], Minute, checkOnly: 1);
        Assert.Equal(0, refused?.Index);
        Assert.InRange(refused!.Value.Wait, TimeSpan.FromMilliseconds(1), Minute);
        Assert.Null(await store.PeekAsync(a, 2, Minute));
    }

    [Theory]
    [InlineData(Store.InProcess)]
    [InlineData(Store.Redis)]
    [InlineData(Store.RedisDown)]
    public async Task A_reservation_asks_for_the_ledger_only_when_the_store_does_not_hold_the_month(Store kind)
    {
        var (store, _) = await StartAsync(kind);
        var month = LimitGuard.MonthKey(DateTime.UtcNow);
        var user = Guid.NewGuid();
        Assert.Equal(ReserveOutcome.NotSeeded, await store.TryReserveSpendAsync(user, month, 0.001m, Budget));
        Assert.Null(await store.GetSpendAsync(user, month));
        Assert.Equal(ReserveOutcome.Reserved, await store.TryReserveSpendAsync(user, month, 0.001m, Budget, seed: 0.008m));
        Assert.Equal(0.009m, await store.GetSpendAsync(user, month));
        // Seeded: the seed of a later call is ignored.
        Assert.Equal(ReserveOutcome.Reserved, await store.TryReserveSpendAsync(user, month, 0.002m, Budget, seed: 5m));
        Assert.Equal(0.011m, await store.GetSpendAsync(user, month));
        Assert.Equal(ReserveOutcome.Refused, await store.TryReserveSpendAsync(user, month, 0.001m, Budget));
        Assert.Equal(0.011m, await store.GetSpendAsync(user, month));
        // A seed that has reached the budget refuses, and is kept.
        var spent = Guid.NewGuid();
        Assert.Equal(ReserveOutcome.Refused, await store.TryReserveSpendAsync(spent, month, 0.001m, Budget, seed: Budget));
        Assert.Equal(Budget, await store.GetSpendAsync(spent, month));
    }

    [Theory]
    [InlineData(Store.InProcess)]
    [InlineData(Store.Redis)]
    [InlineData(Store.RedisDown)]
    public async Task The_first_reservation_of_the_month_seeds_it_from_the_ledger_and_reserves(Store kind)
    {
        var (store, guard) = await StartAsync(kind);
        await using (var scope = _services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
            var now = DateTime.UtcNow;
            db.UsageRecords.Add(new UsageRecord { Id = Guid.NewGuid(), UserId = _userId, Model = "m", Source = "gateway", CostUsd = 0.006m, CreatedAt = now });
            db.UsageRecords.Add(new UsageRecord { Id = Guid.NewGuid(), UserId = _userId, Model = "m", Source = "gateway", CostUsd = 0.002m, CreatedAt = now });
            // Last month's spend does not count.
            db.UsageRecords.Add(new UsageRecord { Id = Guid.NewGuid(), UserId = _userId, Model = "m", Source = "gateway", CostUsd = 1m, CreatedAt = LimitGuard.MonthStart(now).AddDays(-1) });
            await db.SaveChangesAsync(Ct);
        }
        var month = LimitGuard.MonthKey(DateTime.UtcNow);
        Assert.Null(await store.GetSpendAsync(_userId, month));

        var (reservation, refusal) = await guard.ReserveSpendAsync(_userId, 0.001m);
        Assert.Null(refusal);
        Assert.Equal(0.001m, reservation!.Amount);
        Assert.Equal(0.009m, await store.GetSpendAsync(_userId, month));
        Assert.Equal(0.009m, await guard.MonthlySpendAsync(_userId));

        Assert.Null((await guard.ReserveSpendAsync(_userId, 0.002m)).Refusal);
        var (none, overBudget) = await guard.ReserveSpendAsync(_userId, 0.001m);
        Assert.Null(none);
        Assert.Equal("budget", overBudget?.Limit);
        Assert.Equal(0.011m, await guard.MonthlySpendAsync(_userId));
    }

    [Theory]
    [InlineData(Store.InProcess)]
    [InlineData(Store.Redis)]
    [InlineData(Store.RedisDown)]
    public async Task An_admission_takes_windows_slots_and_reservation_together_and_a_refused_one_holds_nothing(Store kind)
    {
        var (store, _) = await StartAsync(kind);
        var user = Guid.NewGuid();
        var month = LimitGuard.MonthKey(DateTime.UtcNow);
        string rate = $"test:rate:{Guid.NewGuid()}", one = $"test:one:{Guid.NewGuid()}", two = $"test:two:{Guid.NewGuid()}";
        var ask = new AdmissionRequest([(rate, 10)], Minute, 0, [(one, 1), (two, 2)], new SpendAsk(user, month, 0.004m, Budget));

        // The month is not held: windows and slots are taken, the reservation is left to a seeded call.
        var first = await store.AdmitAsync(ask);
        Assert.Equal(AdmissionStep.SpendNotSeeded, first.Step);
        Assert.Equal(2, first.Slots!.Length);
        Assert.Null(await store.GetSpendAsync(user, month));
        Assert.Equal(ReserveOutcome.Reserved, await store.TryReserveSpendAsync(user, month, 0.004m, Budget, seed: 0m));

        // Slot "one" is full: refused at it, "two" not taken, nothing reserved.
        var full = await store.AdmitAsync(ask);
        Assert.Equal(AdmissionStep.Slot, full.Step);
        Assert.Equal(0, full.Index);
        Assert.Null(full.Slots);
        Assert.Equal(0.004m, await store.GetSpendAsync(user, month));
        var probe = await store.TryEnterAsync(two, 2);
        Assert.NotNull(probe);
        Assert.Null(await store.TryEnterAsync(two, 2));
        await store.LeaveAsync(two, probe!);

        // With "one" free again: admitted, both slots and the reservation taken in the same step.
        await store.LeaveAsync(one, first.Slots[0]);
        var admitted = await store.AdmitAsync(ask);
        Assert.Equal(AdmissionStep.Admitted, admitted.Step);
        Assert.Equal(0.008m, await store.GetSpendAsync(user, month));
        Assert.Null(await store.TryEnterAsync(one, 1));
        Assert.Null(await store.TryEnterAsync(two, 2));
        await store.LeaveAsync(one, admitted.Slots![0]);
        await store.LeaveAsync(two, admitted.Slots[1]);

        // The budget reached: refused before any slot is taken.
        Assert.Equal(ReserveOutcome.Reserved, await store.TryReserveSpendAsync(user, month, 0.004m, Budget));
        var spent = await store.AdmitAsync(ask);
        Assert.Equal(AdmissionStep.Spend, spent.Step);
        Assert.Equal(0.012m, await store.GetSpendAsync(user, month));
        var free = await store.TryEnterAsync(one, 1);
        Assert.NotNull(free);
        await store.LeaveAsync(one, free!);

        // Every admission above counted in the window, refused ones included (as a rate check ahead of
        // the other limits would). Full, it refuses first, naming the window, and takes no slot.
        var limited = await store.AdmitAsync(new AdmissionRequest([(rate, 4)], Minute, 0, [(one, 1)], null));
        Assert.Equal(AdmissionStep.Rate, limited.Step);
        Assert.Equal(0, limited.Index);
        Assert.InRange(limited.Wait, TimeSpan.FromMilliseconds(1), Minute);
        Assert.Null(limited.Slots);
        free = await store.TryEnterAsync(one, 1);
        Assert.NotNull(free);
        await store.LeaveAsync(one, free!);

        // A leading check-only window refuses without being hit, as in HitAllAsync; a free call reserves nothing.
        string gate = $"test:gate:{Guid.NewGuid()}", other = $"test:other:{Guid.NewGuid()}";
        var gated = new AdmissionRequest([(gate, 1), (other, 10)], Minute, 1, [], null);
        Assert.Equal(AdmissionStep.Admitted, (await store.AdmitAsync(gated)).Step);
        Assert.Null(await store.PeekAsync(gate, 1, Minute));
        Assert.NotNull(await store.PeekAsync(other, 1, Minute));
        await store.HitAsync(gate, int.MaxValue, Minute);
        Assert.Equal(AdmissionStep.Rate, (await store.AdmitAsync(gated)).Step);
        Assert.Null(await store.PeekAsync(other, 2, Minute));
    }

    [Theory]
    [InlineData(Store.InProcess)]
    [InlineData(Store.Redis)]
    [InlineData(Store.RedisDown)]
    public async Task A_call_whose_months_spend_cannot_be_read_from_the_ledger_fails_and_holds_no_slot(Store kind)
    {
        var (_, guard) = await StartAsync(kind);
        // The month's spend is not in the store yet, so the admission takes the slots and then reads the ledger to seed
        // it: that read fails here, as it does while the database is unreachable.
        await using (var scope = _services.CreateAsyncScope())
        {
            await Microsoft.EntityFrameworkCore.RelationalDatabaseFacadeExtensions.ExecuteSqlRawAsync(
                scope.ServiceProvider.GetRequiredService<AppDbContext>().Database, "DROP TABLE usage_records", Ct);
        }
        await Assert.ThrowsAsync<Microsoft.Data.Sqlite.SqliteException>(async () => await guard.AdmitCallAsync(_userId, null, null, stream: true, maxCost: 0.004m));

        // The failed call gave its slots back: the account still gets every generation and stream slot it is allowed.
        var held = new List<GenerationSlot>();
        for (var i = 0; i < guard.Options.MaxConcurrentGenerationsPerUser; i++)
        {
            held.Add((await guard.TakeSlotAsync(_userId)).Slot ?? throw new Xunit.Sdk.XunitException($"generation slot {i + 1} refused"));
        }
        for (var i = 0; i < guard.Options.MaxConcurrentStreamsPerUser; i++)
        {
            held.Add((await guard.TakeStreamSlotAsync(_userId)).Slot ?? throw new Xunit.Sdk.XunitException($"stream slot {i + 1} refused"));
        }
        foreach (var slot in held)
        {
            await slot.DisposeAsync();
        }
    }

    [Theory]
    [InlineData(Store.InProcess)]
    [InlineData(Store.Redis)]
    [InlineData(Store.RedisDown)]
    public async Task A_call_admission_names_the_limit_that_refused_it_and_then_holds_nothing(Store kind)
    {
        var (store, guard) = await StartAsync(kind);
        var month = LimitGuard.MonthKey(DateTime.UtcNow);
        // First paid call of the month: seeded from the (empty) ledger, both slots held, the maximum reserved.
        var first = await guard.AdmitCallAsync(_userId, null, null, stream: true, maxCost: 0.004m);
        Assert.Null(first.Refusal);
        Assert.NotNull(first.StreamSlot);
        Assert.NotNull(first.Slot);
        Assert.Equal(0.004m, first.Reservation!.Amount);
        Assert.Equal(0.004m, await store.GetSpendAsync(_userId, month));
        await guard.SettleSpendAsync(first.Reservation, 0.001m, first.Slot);
        await first.StreamSlot!.DisposeAsync();
        Assert.Equal(0.001m, await store.GetSpendAsync(_userId, month));

        // The budget (0.01) reached: a paid call is refused, a free one still admitted.
        Assert.Equal(ReserveOutcome.Reserved, await store.TryReserveSpendAsync(_userId, month, 0.009m, Budget));
        Assert.Equal("budget", (await guard.AdmitCallAsync(_userId, null, null, stream: false, maxCost: 0.001m)).Refusal?.Limit);
        var freeCall = await guard.AdmitCallAsync(_userId, null, null, stream: false, maxCost: 0m);
        Assert.Null(freeCall.Refusal);
        Assert.Equal(0m, freeCall.Reservation!.Amount);
        await freeCall.Slot!.DisposeAsync();

        // Every stream slot held elsewhere: a streamed call is refused, and took no generation slot.
        var streamer = Guid.NewGuid();
        var streams = new List<GenerationSlot>();
        while ((await guard.TakeStreamSlotAsync(streamer)).Slot is { } s)
        {
            streams.Add(s);
        }
        Assert.Equal("streams", (await guard.AdmitCallAsync(streamer, null, null, stream: true, maxCost: 0m)).Refusal?.Limit);
        var generations = new List<GenerationSlot>();
        while ((await guard.TakeSlotAsync(streamer)).Slot is { } g)
        {
            generations.Add(g);
        }
        Assert.Equal(guard.Options.MaxConcurrentGenerationsPerUser, generations.Count);
        Assert.Equal("concurrency", (await guard.AdmitCallAsync(streamer, null, null, stream: false, maxCost: 0m)).Refusal?.Limit);
        foreach (var slot in streams.Concat(generations))
        {
            await slot.DisposeAsync();
        }

        // The key's window: its allowance, then key_rate, and the refused call holds no slot.
        var keyUser = Guid.NewGuid();
        var key = Guid.NewGuid();
        for (var i = 0; i < KeyPerMinute; i++)
        {
            var ok = await guard.AdmitCallAsync(keyUser, key, null, stream: false, maxCost: 0m);
            Assert.Null(ok.Refusal);
            await ok.Slot!.DisposeAsync();
        }
        var refused = await guard.AdmitCallAsync(keyUser, key, null, stream: false, maxCost: 0m);
        Assert.Equal("key_rate", refused.Refusal?.Limit);
        Assert.Null(refused.Slot);
        Assert.InRange(refused.Refusal!.RetryAfterSeconds, 1, 60);
    }

    [Theory]
    [InlineData(Store.InProcess)]
    [InlineData(Store.Redis)]
    [InlineData(Store.RedisDown)]
    public async Task A_chat_turn_meets_its_stream_slot_before_the_budget_and_an_answer_without_generation_takes_only_the_stream_slot(Store kind)
    {
        var (store, guard) = await StartAsync(kind);
        var month = LimitGuard.MonthKey(DateTime.UtcNow);
        Assert.Equal(ReserveOutcome.Reserved, await store.TryReserveSpendAsync(_userId, month, Budget, null, seed: 0m));
        var streams = new List<GenerationSlot>();
        while ((await guard.TakeStreamSlotAsync(_userId)).Slot is { } s)
        {
            streams.Add(s);
        }

        // Over the budget with every stream slot taken: a chat turn names the streams (as when it took the
        // stream slot first), a /v1 call the budget (its order since it has been one call).
        Assert.Equal("streams", (await guard.AdmitTurnAsync(_userId, null, null, stream: true, maxCost: 0.001m)).Refusal?.Limit);
        Assert.Equal("budget", (await guard.AdmitCallAsync(_userId, null, null, stream: true, maxCost: 0.001m)).Refusal?.Limit);
        Assert.Equal("streams", (await guard.AdmitAnswerAsync(_userId, null, null, stream: true)).Refusal?.Limit);
        foreach (var slot in streams)
        {
            await slot.DisposeAsync();
        }
        Assert.Equal("budget", (await guard.AdmitTurnAsync(_userId, null, null, stream: true, maxCost: 0.001m)).Refusal?.Limit);
        Assert.Equal(Budget, await store.GetSpendAsync(_userId, month));

        // A replayed stream (another user: the window holds 5): the stream slot and no generation slot,
        // nothing reserved; released, all is free again.
        var other = Guid.NewGuid();
        var answer = await guard.AdmitAnswerAsync(other, null, null, stream: true);
        Assert.Null(answer.Refusal);
        Assert.NotNull(answer.StreamSlot);
        Assert.Null(answer.Slot);
        Assert.Equal(guard.Options.MaxConcurrentGenerationsPerUser, await FreeAsync(() => guard.TakeSlotAsync(other)));
        Assert.Equal(guard.Options.MaxConcurrentStreamsPerUser - 1, await FreeAsync(() => guard.TakeStreamSlotAsync(other)));
        await guard.ReleaseAsync(answer);

        // A free turn admitted and given back (its transaction did not commit): both slots free again.
        var turn = await guard.AdmitTurnAsync(other, null, null, stream: true, maxCost: 0m);
        Assert.Null(turn.Refusal);
        Assert.Equal(guard.Options.MaxConcurrentGenerationsPerUser - 1, await FreeAsync(() => guard.TakeSlotAsync(other)));
        await guard.ReleaseAsync(turn);
        Assert.Equal(guard.Options.MaxConcurrentGenerationsPerUser, await FreeAsync(() => guard.TakeSlotAsync(other)));
        Assert.Equal(guard.Options.MaxConcurrentStreamsPerUser, await FreeAsync(() => guard.TakeStreamSlotAsync(other)));

        // A paid turn given back returns its reservation too.
        Assert.Equal(ReserveOutcome.Reserved, await store.TryReserveSpendAsync(other, month, 0.005m, null, seed: 0m));
        var paid = await guard.AdmitTurnAsync(other, null, null, stream: false, maxCost: 0.002m);
        Assert.Null(paid.Refusal);
        Assert.Equal(0.007m, await store.GetSpendAsync(other, month));
        await guard.ReleaseAsync(paid);
        Assert.Equal(0.005m, await store.GetSpendAsync(other, month));
        Assert.Equal(guard.Options.MaxConcurrentGenerationsPerUser, await FreeAsync(() => guard.TakeSlotAsync(other)));
    }

    [Theory]
    [InlineData(Store.InProcess)]
    [InlineData(Store.Redis)]
    [InlineData(Store.RedisDown)]
    public async Task A_v1_streams_slot_is_freed_with_its_calls_settlement_once_and_alone_when_its_client_leaves_first(Store kind)
    {
        var (_, guard) = await StartAsync(kind);
        var user = Guid.NewGuid();
        var streams = guard.Options.MaxConcurrentStreamsPerUser;
        var call = await guard.AdmitCallAsync(user, null, null, stream: true, maxCost: 0m);
        Assert.Null(call.Refusal);
        Assert.Equal(streams - 1, await FreeAsync(() => guard.TakeStreamSlotAsync(user)));

        // The provider's answer ended: the settlement frees the generation slot and the stream slot together.
        await guard.SettleSpendAsync(call.Reservation!, 0m, call.Slot);
        Assert.Equal(streams, await FreeAsync(() => guard.TakeStreamSlotAsync(user)));
        Assert.Equal(guard.Options.MaxConcurrentGenerationsPerUser, await FreeAsync(() => guard.TakeSlotAsync(user)));
        // The response's own release after it frees nothing more (another stream's slot stays held).
        var other = await guard.TakeStreamSlotAsync(user);
        Assert.NotNull(other.Slot);
        await call.StreamSlot!.DisposeAsync();
        Assert.Equal(streams - 1, await FreeAsync(() => guard.TakeStreamSlotAsync(user)));
        await other.Slot!.DisposeAsync();

        // The client left first: its stream slot is freed then, and the settlement frees the generation slot alone.
        var left = await guard.AdmitCallAsync(user, null, null, stream: true, maxCost: 0m);
        await left.StreamSlot!.DisposeAsync();
        Assert.Equal(streams, await FreeAsync(() => guard.TakeStreamSlotAsync(user)));
        Assert.Equal(guard.Options.MaxConcurrentGenerationsPerUser - 1, await FreeAsync(() => guard.TakeSlotAsync(user)));
        await guard.SettleSpendAsync(left.Reservation!, 0m, left.Slot);
        Assert.Equal(guard.Options.MaxConcurrentGenerationsPerUser, await FreeAsync(() => guard.TakeSlotAsync(user)));
    }

    /// <summary>
    /// Keys as an earlier version's scripts leave them, or as this version's leave them for an earlier one, during a
    /// rolling update: hits that left a window only checked and leases that ran out (a dead replica's) are not
    /// counted, whichever script drops them; the month's spend keeps a time to live without renewing it.
    /// </summary>
    [Fact]
    public async Task Windows_only_checked_and_slots_count_what_is_current_whoever_wrote_the_key()
    {
        var (store, guard) = await StartAsync(Store.Redis);
        var db = _redis!.GetDatabase();
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var gate = $"test:gate:{Guid.NewGuid()}";
        RedisKey gateKey = "jackcwf:limits:" + gate;
        // Hits older than the window, never dropped (the key is only ever checked), and one inside it.
        await db.SortedSetAddAsync(gateKey, [new("old1", now - 120_000), new("old2", now - 90_000), new("new", now - 1_000)]);
        await db.KeyExpireAsync(gateKey, TimeSpan.FromMinutes(1));
        Assert.Null(await store.HitAllAsync([(gate, 2), ($"test:a:{Guid.NewGuid()}", 10)], Minute, checkOnly: 1));
        await db.SortedSetAddAsync(gateKey, "new2", now - 500);
        var refused = await store.HitAllAsync([(gate, 2), ($"test:a:{Guid.NewGuid()}", 10)], Minute, checkOnly: 1);
        Assert.Equal(0, refused?.Index);
        // The wait is until the oldest hit inside the window leaves it (about 59 s), not one that left it already.
        Assert.InRange(refused!.Value.Wait, TimeSpan.FromSeconds(50), Minute);

        // Every generation slot held by leases that ran out: the call is admitted, and counts one slot.
        var user = Guid.NewGuid();
        RedisKey slots = "jackcwf:limits:" + BucketNames.Get(BucketNames.UserConcurrency, user);
        var max = guard.Options.MaxConcurrentGenerationsPerUser;
        await db.SortedSetAddAsync(slots, Enumerable.Range(0, max).Select(i => new SortedSetEntry($"dead{i}", now - 1_000)).ToArray());
        var call = await guard.AdmitCallAsync(user, null, null, stream: false, maxCost: 0.001m);
        Assert.Null(call.Refusal);
        Assert.Equal(max - 1, await FreeAsync(() => guard.TakeSlotAsync(user)));
        // A lease still running counts.
        await db.SortedSetAddAsync(slots, "alive", now + 600_000);
        Assert.Equal(max - 2, await FreeAsync(() => guard.TakeSlotAsync(user)));

        // The month's spend was seeded with a time to live, which the reservations keep.
        var ttl = await db.KeyTimeToLiveAsync("jackcwf:limits:spend:" + user + ":" + LimitGuard.MonthKey(DateTime.UtcNow));
        Assert.InRange(ttl!.Value, TimeSpan.FromDays(39), TimeSpan.FromDays(40));
        await guard.SettleSpendAsync(call.Reservation!, 0.0005m, call.Slot);
        Assert.Equal(0.0005m, await store.GetSpendAsync(user, LimitGuard.MonthKey(DateTime.UtcNow)));
    }

    /// <summary>
    /// Every hit is its own member of the window, whichever call records it (the admission, a plain hit), so the window
    /// counts each one; a member is 12 bytes (Redis keeps a window's members for the whole window: at the default limits
    /// about 117 bytes a member, against 149 for the 32-character ids of before; docs/deployment/capacity.md, "Redis memory").
    /// </summary>
    [Fact]
    public async Task Each_hit_is_its_own_small_member_of_the_window()
    {
        var (store, _) = await StartAsync(Store.Redis);
        var db = _redis!.GetDatabase();
        var rate = $"test:rate:{Guid.NewGuid()}";
        for (var i = 0; i < 150; i++)
        {
            Assert.Equal(AdmissionStep.Admitted, (await store.AdmitAsync(new AdmissionRequest([(rate, 1000)], Minute, 0, [], null))).Step);
            Assert.Null(await store.HitAsync(rate, 1000, Minute));
        }
        var members = await db.SortedSetRangeByRankAsync("jackcwf:limits:" + rate);
        Assert.Equal(300, members.Length);
        Assert.Equal(300, members.Select(m => Convert.ToHexString((byte[])m!)).Distinct().Count());
        Assert.All(members, m => Assert.Equal(12, ((byte[])m!).Length));
    }

    /// <summary>
    /// The admission and the settlement name their scripts by hash; a Redis that has forgotten them (restarted,
    /// failed over, <c>SCRIPT FLUSH</c>) answers NOSCRIPT, and the call is sent again with the script's text:
    /// it still counts in Redis, not in the replica's own counters.
    /// </summary>
    [Fact]
    public async Task Admission_and_settlement_reach_Redis_after_it_has_forgotten_their_scripts()
    {
        var (store, _) = await StartAsync(Store.Redis);
        var db = _redis!.GetDatabase();
        await using var admin = await ConnectionMultiplexer.ConnectAsync(_redisDb!.Configuration + ",allowAdmin=true");
        var server = admin.GetServers().First();
        var user = Guid.NewGuid();
        var month = LimitGuard.MonthKey(DateTime.UtcNow);
        string rate = $"test:rate:{Guid.NewGuid()}", slot = $"test:slot:{Guid.NewGuid()}";
        Assert.Equal(ReserveOutcome.Reserved, await store.TryReserveSpendAsync(user, month, 0m, Budget, seed: 0m));
        var ask = new AdmissionRequest([(rate, 10)], Minute, 0, [(slot, 1)], new SpendAsk(user, month, 0.004m, Budget));

        for (var round = 0; round < 2; round++)
        {
            await server.ScriptFlushAsync();
            var admitted = await store.AdmitAsync(ask);
            Assert.Equal(AdmissionStep.Admitted, admitted.Step);
            Assert.Equal(1, await db.SortedSetLengthAsync("jackcwf:limits:" + slot));
            Assert.Equal(round + 1, await db.SortedSetLengthAsync("jackcwf:limits:" + rate));

            await server.ScriptFlushAsync();
            await store.LeaveAsync(slot, admitted.Slots![0], new SpendDelta(user, month, -0.003m));
            Assert.Equal(0, await db.SortedSetLengthAsync("jackcwf:limits:" + slot));
            Assert.Equal((round + 1) * 0.001m, decimal.Parse((string)(await db.StringGetAsync($"jackcwf:limits:spend:{user}:{month}"))!, System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    /// <summary>
    /// A concurrency slot counts as long as the replica holding it lives, however long its generation runs: the replica
    /// renews its lease. A replica that dies (killed, never releasing its slots) stops renewing, and its slots stop
    /// counting one lease later (a minute by default; ten minutes, without renewal, before), so its users are not held
    /// back by generations that ended with it. A slot released is not renewed back.
    /// </summary>
    [Fact]
    public async Task A_live_replicas_slot_outlives_its_lease_and_a_dead_replicas_stops_counting_a_lease_after_it()
    {
        _redisDb = await TestRedis.CreateDatabaseAsync(Ct);
        _redis = await ConnectionMultiplexer.ConnectAsync(_redisDb.Configuration);
        const long lease = 3_000;
        var dying = new RedisLimitStore(_redis, new InProcessLimitStore(), NullLogger<RedisLimitStore>.Instance, lease);
        using var other = new RedisLimitStore(_redis, new InProcessLimitStore(), NullLogger<RedisLimitStore>.Instance, lease);
        string bucket = $"test:slot:{Guid.NewGuid()}", admitted = $"test:slot:{Guid.NewGuid()}";
        var slot = await dying.TryEnterAsync(bucket, 1);
        Assert.NotNull(slot);
        Assert.NotEqual("local", slot);
        // The admission's slots are renewed the same way, and more slots than one renewal call carries (250).
        Assert.Equal(AdmissionStep.Admitted, (await dying.AdmitAsync(new AdmissionRequest([], Minute, 0, [(admitted, 1)], null))).Step);
        var many = $"test:slot:{Guid.NewGuid()}";
        for (var i = 0; i < 260; i++)
        {
            Assert.NotNull(await dying.TryEnterAsync(many, 1000));
        }

        // Two leases later all of them still count: their replica renews them.
        await Task.Delay(TimeSpan.FromMilliseconds(2 * lease), Ct);
        Assert.Null(await other.TryEnterAsync(bucket, 1));
        Assert.Equal(AdmissionStep.Slot, (await other.AdmitAsync(new AdmissionRequest([], Minute, 0, [(admitted, 1)], null))).Step);
        Assert.Null(await other.TryEnterAsync(many, 260));

        // The replica dies without releasing them: the other one gets the slot once the lease has run out.
        dying.Dispose();
        string? taken = null;
        for (var wait = System.Diagnostics.Stopwatch.StartNew(); taken is null && wait.Elapsed < TimeSpan.FromSeconds(30); )
        {
            taken = await other.TryEnterAsync(bucket, 1);
            if (taken is null)
            {
                await Task.Delay(100, Ct);
            }
        }
        Assert.NotNull(taken);
        Assert.Equal(AdmissionStep.Admitted, (await other.AdmitAsync(new AdmissionRequest([], Minute, 0, [(admitted, 1)], null))).Step);

        // Released: gone from Redis, and the renewals that follow do not add it back.
        await other.LeaveAsync(bucket, taken);
        await Task.Delay(TimeSpan.FromMilliseconds(lease / 2), Ct);
        Assert.Equal(0, await _redis.GetDatabase().SortedSetLengthAsync("jackcwf:limits:" + bucket));
    }

    /// <summary>How many slots <paramref name="take"/> can still take (all given back after counting).</summary>
    private static async Task<int> FreeAsync(Func<ValueTask<(GenerationSlot? Slot, LimitRefusal? Refusal)>> take)
    {
        var held = new List<GenerationSlot>();
        while ((await take()).Slot is { } slot)
        {
            held.Add(slot);
        }
        foreach (var slot in held)
        {
            await slot.DisposeAsync();
        }
        return held.Count;
    }
}
