using StackExchange.Redis;

namespace Jackcwf.Api.Limits;

/// <summary>
/// The limit counters in Redis, atomic through Lua scripts, so they hold across replicas (one source
/// of truth instead of N drifting copies). When Redis is unreachable the replica falls back to its own
/// counters (limits then hold per replica) and returns to Redis by itself.
/// </summary>
/// <remarks>
/// A concurrency slot is a member of a sorted set scored with its lease's end: the replica holding it renews the
/// leases of all its slots every quarter lease, in the background, so a slot lasts as long as its generation on a
/// live replica and a dead replica's slots stop counting one lease after its last renewal (a minute), instead of
/// blocking their user for the ten minutes a lease lasted without renewal. <paramref name="slotLeaseMs"/> is for tests.
/// </remarks>
public sealed class RedisLimitStore(
    IConnectionMultiplexer redis, InProcessLimitStore fallback, ILogger<RedisLimitStore> logger, long slotLeaseMs = RedisLimitStore.DefaultSlotLeaseMs)
    : ILimitStore, IDisposable
{
    private const string Prefix = "jackcwf:limits:";
    // The hot path's keys (the /v1 admission and release), made once per bucket rather than per request.
    private static readonly BucketNames.Table<string> s_keys = new(static bucket => Prefix + bucket);
    private static readonly BucketNames.Table<(Guid User, string Month)> s_spendKeys = new(static k => $"{Prefix}spend:{k.User}:{k.Month}");
    /// <summary>
    /// A slot's lease, renewed every quarter of it while its replica holds the slot: a slot of a replica that died is
    /// freed this long after the replica's last renewal. Long enough for a Redis failover (renewals fail meanwhile).
    /// </summary>
    public const long DefaultSlotLeaseMs = 60 * 1000;
    private static readonly TimeSpan SpendTtl = TimeSpan.FromDays(40);

    // Sliding windows on sorted sets of request times (server clock), all KEYS sharing one window: nil
    // when every key allows the hit, which is then recorded in each key after the first ARGV[3] (those are
    // only checked); otherwise nothing is recorded and the answer is {index of the first refusing key
    // (1-based), ms until it would allow one more}. A key that is only checked is counted inside the window
    // (ZCOUNT) without dropping the hits that left it: a key that is hit drops them first (the set stays
    // bounded by the window), one that is only checked expires with its last hit (one command instead of two;
    // every count, here and in earlier versions' scripts, covers the window only).
    // Shared by HitScript and AdmitScript: the server's time, the window, and hit(n, limitAt), which checks
    // KEYS[1..n] against their limits ARGV[limitAt + i] and answers the first refusing key's index and the ms
    // until it would allow one more, or nil after recording the hit in each key after the first `gate`.
    private const string WindowsLua = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local window = tonumber(ARGV[1])
        local gate = tonumber(ARGV[3])
        local function hit(n, limitAt)
          for i = 1, n do
            local c
            if i <= gate then
              c = redis.call('ZCOUNT', KEYS[i], '(' .. (now - window), '+inf')
            else
              redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
              c = redis.call('ZCARD', KEYS[i])
            end
            if c >= tonumber(ARGV[limitAt + i]) then
              local oldest = redis.call('ZRANGEBYSCORE', KEYS[i], '(' .. (now - window), '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
              return i, tonumber(oldest[2]) + window - now
            end
          end
          for i = gate + 1, n do
            redis.call('ZADD', KEYS[i], now, ARGV[2])
            redis.call('PEXPIRE', KEYS[i], window)
          end
          return nil
        end

        """;

    private const string HitScript = WindowsLua + """
        local i, wait = hit(#KEYS, 3)
        if i then return {i, wait} end
        return false
        """;

    // The same window read without adding: -1 when under the limit, else ms until the oldest hit leaves it.
    private const string PeekScript = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local window = tonumber(ARGV[1])
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
        if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
          local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
          return tonumber(oldest[2]) + window - now
        end
        return -1
        """;

    // Concurrency slots as leased members of a sorted set: expired leases (dead replicas) are dropped first.
    private const string EnterScript = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
        if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
        redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
        redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
        return 1
        """;

    // Held slots' leases renewed from the server's clock, KEYS[i] holding slot ARGV[i + 1]; a slot freed meanwhile is not
    // added back (XX). A key's time to live follows its newest lease, as in the admission.
    private const string RenewScript = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local lease = tonumber(ARGV[1])
        for i = 1, #KEYS do
          if redis.call('ZADD', KEYS[i], 'XX', 'CH', now + lease, ARGV[i + 1]) == 1 then
            redis.call('PEXPIRE', KEYS[i], lease)
          end
        end
        return 1
        """;

    /// <summary>Slots renewed per script call: 10,000 held slots are 40 calls every renewal, not 10,000.</summary>
    private const int RenewBatch = 250;

    // A slot freed and its call's settlement applied, in one round trip.
    private const string LeaveScript = """
        redis.call('ZREM', KEYS[1], ARGV[1])
        if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('INCRBYFLOAT', KEYS[2], ARGV[2]) end
        return 1
        """;

    private const string AddSpendScript = """
        if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('INCRBYFLOAT', KEYS[1], ARGV[1]) end
        return false
        """;

    // Check and reserve in one step, so concurrent calls on every replica see each other's reservations.
    // A month the key does not hold answers -1 (not seeded) unless ARGV[4] brings the ledger's total to start from.
    // The key's time to live (SpendTtl) is set once, when the month is seeded, and not renewed by each
    // reservation: 40 days from the seed always reach past the month's end, after which the key is no longer
    // read (earlier versions renewed it; keys of both kinds always have one).
    private const string ReserveScript = """
        local v = redis.call('GET', KEYS[1])
        if not v then
          if ARGV[4] == '' then return -1 end
          v = ARGV[4]
          redis.call('SET', KEYS[1], v, 'EX', ARGV[3])
        end
        if ARGV[2] ~= '' and tonumber(v) >= tonumber(ARGV[2]) then return 0 end
        redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
        return 1
        """;

    // One call's admission (ILimitStore.AdmitAsync) in one round trip. KEYS: the request windows (ARGV[4] of
    // them), the slots (ARGV[5]), then the month's spend when a reservation is asked (ARGV[6] = 1).
    // ARGV[1..3]: window ms, hit member, check-only count; ARGV[7]: slot lease ms; ARGV[8]: how many slots
    // (the first ones) are checked before the budget; then the window limits, the slot maxima, the slot ids,
    // and (spend) amount, budget ('' = none), spend ttl s.
    // Answers {step, index, ms}: 0 admitted, 1 window refused, 2 budget spent, 3 slot full, 4 admitted
    // without a reservation because the month is not held (the caller seeds it).
    // As HitScript, windows only checked (the address's lockout) are counted with ZCOUNT. A slot is counted
    // while its lease runs (ZCOUNT above now): leases of a dead replica stop counting when they run out, as
    // before, and leave the set with it (its time to live is the newest lease's) or at the next TryEnter,
    // rather than at every admission. The month's spend keeps the time to live its seed gave it (ReserveScript).
    private const string AdmitScript = WindowsLua + """
        local nr, ns, pre = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[8])
        local max, ids = 8 + nr, 8 + nr + ns
        local i, wait = hit(nr, 8)
        if i then return {1, i, wait} end
        local live = '(' .. now
        for i = 1, math.min(pre, ns) do
          if redis.call('ZCOUNT', KEYS[nr + i], live, '+inf') >= tonumber(ARGV[max + i]) then return {3, i, 0} end
        end
        local spend = nil
        local sp = ids + ns
        if ARGV[6] == '1' then
          spend = redis.call('GET', KEYS[nr + ns + 1])
          if spend and ARGV[sp + 2] ~= '' and tonumber(spend) >= tonumber(ARGV[sp + 2]) then return {2, 0, 0} end
        end
        for i = pre + 1, ns do
          if redis.call('ZCOUNT', KEYS[nr + i], live, '+inf') >= tonumber(ARGV[max + i]) then return {3, i, 0} end
        end
        local lease = tonumber(ARGV[7])
        for i = 1, ns do
          redis.call('ZADD', KEYS[nr + i], now + lease, ARGV[ids + i])
          redis.call('PEXPIRE', KEYS[nr + i], lease)
        end
        if ARGV[6] == '1' then
          if not spend then return {4, 0, 0} end
          redis.call('INCRBYFLOAT', KEYS[nr + ns + 1], ARGV[sp + 1])
        end
        return {0, 0, 0}
        """;

    // The two scripts of every /v1 request (admission, settlement) are sent by their SHA1 (EVALSHA) from a
    // hash made once here. Given the script's text instead, the client hashes the whole text (2-3 KB) to find
    // the script's SHA1 in its table and wraps the call in an async method of its own, on every call.
    // Redis forgets scripts when it restarts or fails over (NOSCRIPT): the call is then sent again with the
    // text, which loads the script (EvaluateAsync below). The other scripts are sent by text.
    private static readonly byte[] s_admitSha1 = Sha1(AdmitScript);
    private static readonly byte[] s_leaveSha1 = Sha1(LeaveScript);
    private static readonly byte[] s_renewSha1 = Sha1(RenewScript);

    // EVALSHA names a script by the SHA1 of its text: Redis's choice, not used for security here.
#pragma warning disable CA5350
    private static byte[] Sha1(string script) => System.Security.Cryptography.SHA1.HashData(System.Text.Encoding.UTF8.GetBytes(script));
#pragma warning restore CA5350

    /// <summary>One of the two request scripts by its SHA1; sent again with its text when Redis has forgotten it (NOSCRIPT).</summary>
    private static async Task<RedisResult> EvaluateAsync(IDatabase db, byte[] sha1, string script, RedisKey[] keys, RedisValue[] args)
    {
        try
        {
            return await db.ScriptEvaluateAsync(sha1, keys, args);
        }
        catch (RedisServerException e) when (e.Message.StartsWith("NOSCRIPT", StringComparison.Ordinal))
        {
            return await db.ScriptEvaluateAsync(script, keys, args);
        }
    }

    // A request window's member only has to differ from every other member of its key while it is inside the window.
    // 12 bytes: a random prefix drawn once per process (8 bytes; two replicas share one with a chance of 2^-64) and a
    // counter (wraps after 4 billion hits, days past any window). As a 32-character GUID it took 149 bytes of Redis a
    // member once a key holds more than 128 (a skiplist), 52 below (a listpack); these take 117 and 26
    // (bench/redis_memory.py, docs/deployment/capacity.md "Redis memory"), and no system call for the kernel's random bytes.
    private static readonly long s_memberPrefix = BitConverter.ToInt64(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8));
    private static int s_memberCount;

    private static RedisValue HitMember()
    {
        var member = new byte[12];
        System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(member, s_memberPrefix);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(member.AsSpan(8), Interlocked.Increment(ref s_memberCount));
        return member;
    }

    private int _warned;

    public async ValueTask<TimeSpan?> HitAsync(string bucket, int limit, TimeSpan window) =>
        await HitAllAsync([(bucket, limit)], window) is { } refused ? refused.Wait : null;

    public async ValueTask<(int Index, TimeSpan Wait)?> HitAllAsync(IReadOnlyList<(string Bucket, int Limit)> buckets, TimeSpan window, int checkOnly = 0)
    {
        var keys = new RedisKey[buckets.Count];
        var args = new RedisValue[buckets.Count + 3];
        args[0] = (long)window.TotalMilliseconds;
        args[1] = HitMember();
        args[2] = checkOnly;
        for (var i = 0; i < keys.Length; i++)
        {
            keys[i] = Prefix + buckets[i].Bucket;
            args[i + 3] = buckets[i].Limit;
        }
        try
        {
            // One script call for all the buckets: they must live on one Redis node (one primary today; with
            // Redis Cluster, a shared hash tag).
            var refused = await redis.GetDatabase().ScriptEvaluateAsync(HitScript, keys, args);
            Recovered();
            return refused.IsNull ? null : ((int)refused[0] - 1, TimeSpan.FromMilliseconds(Math.Max(1, (long)refused[1])));
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            Degraded(e);
            return await fallback.HitAllAsync(buckets, window, checkOnly);
        }
    }

    public async ValueTask<TimeSpan?> PeekAsync(string bucket, int limit, TimeSpan window)
    {
        try
        {
            var db = redis.GetDatabase();
            RedisKey key = Prefix + bucket;
            // The set's size bounds the hits inside the window from above (hits that left it stay until a
            // script drops them), so below the limit one plain ZCARD answers, without running the script:
            // the usual case, where the bucket (failed attempts) is empty.
            if (await db.SortedSetLengthAsync(key) < limit)
            {
                Recovered();
                return null;
            }
            var wait = (long)await db.ScriptEvaluateAsync(PeekScript, [key], [(long)window.TotalMilliseconds, limit]);
            Recovered();
            return wait < 0 ? null : TimeSpan.FromMilliseconds(Math.Max(1, wait));
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            Degraded(e);
            return await fallback.PeekAsync(bucket, limit, window);
        }
    }

    public async ValueTask<string?> TryEnterAsync(string bucket, int max)
    {
        var slot = Guid.NewGuid().ToString("N");
        var key = s_keys[bucket];
        try
        {
            var ok = (long)await redis.GetDatabase().ScriptEvaluateAsync(EnterScript, [key], [max, slotLeaseMs, slot]);
            Recovered();
            if (ok != 1)
            {
                return null;
            }
            Hold(key, slot);
            return slot;
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            Degraded(e);
            return await fallback.TryEnterAsync(bucket, max);
        }
    }

    public async ValueTask LeaveAsync(string bucket, string slot, SpendDelta? spend = null)
    {
        if (slot == "local")
        {
            await fallback.LeaveAsync(bucket, slot);
            if (spend is { } s)
            {
                await AddSpendAsync(s.UserId, s.Month, s.Amount);
            }
            return;
        }
        _held.TryRemove(slot, out _);
        try
        {
            // Awaited, not fire-and-forget: the user's next request may reach another replica, whose entry
            // travels on its own connection and must already see this slot free (a 429 otherwise), and the
            // real cost rather than the reserved maximum.
            if (spend is { } s)
            {
                await EvaluateAsync(redis.GetDatabase(), s_leaveSha1, LeaveScript, [s_keys[bucket], SpendKey(s.UserId, s.Month)],
                    [slot, s.Amount.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            }
            else
            {
                await redis.GetDatabase().SortedSetRemoveAsync(s_keys[bucket], slot);
            }
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            Degraded(e);
        }
        if (spend is { } mirrored)
        {
            // Mirrored locally, as AddSpendAsync does, so an outage starts from a current figure.
            await fallback.AddSpendAsync(mirrored.UserId, mirrored.Month, mirrored.Amount);
        }
    }

    public async ValueTask<decimal?> GetSpendAsync(Guid userId, string month)
    {
        try
        {
            var v = await redis.GetDatabase().StringGetAsync(SpendKey(userId, month));
            return v.IsNull ? null : decimal.Parse(v.ToString(), System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            Degraded(e);
            return await fallback.GetSpendAsync(userId, month);
        }
    }

    public async ValueTask<decimal> SeedSpendAsync(Guid userId, string month, decimal total)
    {
        try
        {
            var db = redis.GetDatabase();
            var key = SpendKey(userId, month);
            await db.StringSetAsync(key, total.ToString(System.Globalization.CultureInfo.InvariantCulture), SpendTtl, When.NotExists);
            var v = await db.StringGetAsync(key);
            return v.IsNull ? total : decimal.Parse(v.ToString(), System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            Degraded(e);
            return await fallback.SeedSpendAsync(userId, month, total);
        }
    }

    public async ValueTask AddSpendAsync(Guid userId, string month, decimal amount)
    {
        try
        {
            // Awaited, not fire-and-forget: the next request may reach another replica, which must see the real
            // cost rather than the reserved maximum. A settlement that fails (Redis gone at that moment) leaves
            // the maximum counted: the budget then refuses early, not late, and the ledger keeps the real cost.
            await redis.GetDatabase().ScriptEvaluateAsync(AddSpendScript, [SpendKey(userId, month)],
                [amount.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            Degraded(e);
        }
        await fallback.AddSpendAsync(userId, month, amount);
    }

    public async ValueTask<ReserveOutcome> TryReserveSpendAsync(Guid userId, string month, decimal amount, decimal? budget, decimal? seed = null)
    {
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        try
        {
            var answer = (long)await redis.GetDatabase().ScriptEvaluateAsync(ReserveScript, [SpendKey(userId, month)],
                [amount.ToString(inv), budget?.ToString(inv) ?? "", (long)SpendTtl.TotalSeconds, seed?.ToString(inv) ?? ""]);
            Recovered();
            if (answer == 1)
            {
                // Mirrored locally (as AddSpendAsync does), so an outage starts from a current figure.
                await fallback.AddSpendAsync(userId, month, amount);
            }
            return answer switch { 1 => ReserveOutcome.Reserved, 0 => ReserveOutcome.Refused, _ => ReserveOutcome.NotSeeded };
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            Degraded(e);
            return await fallback.TryReserveSpendAsync(userId, month, amount, budget, seed);
        }
    }

    public async ValueTask<Admission> AdmitAsync(AdmissionRequest request)
    {
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        int nr = request.Rates.Count, ns = request.Slots.Count;
        var keys = new RedisKey[nr + ns + (request.Spend is null ? 0 : 1)];
        var args = new RedisValue[8 + nr + 2 * ns + (request.Spend is null ? 0 : 3)];
        args[0] = (long)request.Window.TotalMilliseconds;
        args[1] = HitMember();
        args[2] = request.CheckOnly;
        args[3] = nr;
        args[4] = ns;
        args[5] = request.Spend is null ? 0 : 1;
        args[6] = slotLeaseMs;
        args[7] = request.SlotsBeforeSpend;
        var slots = new string[ns];
        for (var i = 0; i < nr; i++)
        {
            keys[i] = s_keys[request.Rates[i].Bucket];
            args[8 + i] = request.Rates[i].Limit;
        }
        for (var i = 0; i < ns; i++)
        {
            keys[nr + i] = s_keys[request.Slots[i].Bucket];
            args[8 + nr + i] = request.Slots[i].Max;
            args[8 + nr + ns + i] = slots[i] = Guid.NewGuid().ToString("N");
        }
        if (request.Spend is { } spend)
        {
            keys[nr + ns] = SpendKey(spend.UserId, spend.Month);
            args[8 + nr + 2 * ns] = spend.Amount.ToString(inv);
            args[9 + nr + 2 * ns] = spend.Budget?.ToString(inv) ?? "";
            args[10 + nr + 2 * ns] = (long)SpendTtl.TotalSeconds;
        }
        RedisResult answer;
        try
        {
            // One script call: every key must live on one Redis node (one primary today; with Redis Cluster, a shared hash tag).
            answer = await EvaluateAsync(redis.GetDatabase(), s_admitSha1, AdmitScript, keys, args);
            Recovered();
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            Degraded(e);
            return await ((ILimitStore)fallback).AdmitAsync(request);
        }
        var step = (int)answer[0];
        if (step is 0 or 4)
        {
            for (var i = 0; i < ns; i++)
            {
                Hold(keys[nr + i], slots[i]);
            }
        }
        if (step == 0 && request.Spend is { } reserved)
        {
            // Mirrored locally (as AddSpendAsync does), so an outage starts from a current figure.
            await fallback.AddSpendAsync(reserved.UserId, reserved.Month, reserved.Amount);
        }
        return step switch
        {
            0 => new(AdmissionStep.Admitted, 0, TimeSpan.Zero, slots),
            1 => new(AdmissionStep.Rate, (int)answer[1] - 1, TimeSpan.FromMilliseconds(Math.Max(1, (long)answer[2])), null),
            2 => new(AdmissionStep.Spend, 0, TimeSpan.Zero, null),
            3 => new(AdmissionStep.Slot, (int)answer[1] - 1, TimeSpan.Zero, null),
            _ => new(AdmissionStep.SpendNotSeeded, 0, TimeSpan.Zero, slots),
        };
    }

    private static RedisKey SpendKey(Guid userId, string month) => s_spendKeys[(userId, month)];

    /// <summary>The slots this replica holds in Redis (slot id → its set's key), whose leases it renews.</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, RedisKey> _held = new();
    private readonly Lock _timerLock = new();
    private ITimer? _renewal;
    private int _renewing;
    private bool _disposed;

    private void Hold(RedisKey key, string slot)
    {
        _held[slot] = key;
        if (_renewal is null)
        {
            lock (_timerLock)
            {
                if (_renewal is null && !_disposed)
                {
                    // One timer for every slot of the replica (not one per slot): it starts with the first slot held.
                    var every = TimeSpan.FromMilliseconds(slotLeaseMs / 4.0);
                    _renewal = TimeProvider.System.CreateTimer(static s => _ = ((RedisLimitStore)s!).RenewAsync(), this, every, every);
                }
            }
        }
    }

    /// <summary>
    /// Renews the lease of every slot held here, <see cref="RenewBatch"/> to a script call, the calls sent together. Like the
    /// admission, a call's keys must live on one Redis node (one primary today; with Redis Cluster, batches per hash slot).
    /// </summary>
    private async Task RenewAsync()
    {
        if (_held.IsEmpty || Interlocked.Exchange(ref _renewing, 1) == 1)
        {
            return;
        }
        try
        {
            var db = redis.GetDatabase();
            await Task.WhenAll(_held.Chunk(RenewBatch).Select(batch => EvaluateAsync(db, s_renewSha1, RenewScript,
                [.. batch.Select(h => h.Value)], [slotLeaseMs, .. batch.Select(h => (RedisValue)h.Key)])));
        }
        catch (Exception e) when (e is RedisException or TimeoutException or ObjectDisposedException)
        {
            // The leases run on: a slot whose renewals keep failing for a whole lease stops counting (and its
            // generation may then be followed by one more than the limit until it ends).
            Degraded(e);
        }
        finally
        {
            Volatile.Write(ref _renewing, 0);
        }
    }

    public void Dispose()
    {
        lock (_timerLock)
        {
            _disposed = true;
            _renewal?.Dispose();
        }
    }

    private void Degraded(Exception e)
    {
        if (Interlocked.Exchange(ref _warned, 1) == 0)
        {
            logger.LogWarning("Redis unavailable for limits ({Error}): counting on this replica until it returns", e.GetType().Name);
        }
    }

    private void Recovered()
    {
        if (Interlocked.Exchange(ref _warned, 0) == 1)
        {
            logger.LogInformation("Redis is back: limits are shared across replicas again");
        }
    }
}
