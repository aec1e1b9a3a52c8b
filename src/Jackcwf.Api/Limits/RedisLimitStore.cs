using StackExchange.Redis;

namespace Jackcwf.Api.Limits;

/// <summary>
/// The limit counters in Redis, atomic through Lua scripts, so they hold across replicas (one source
/// of truth instead of N drifting copies). When Redis is unreachable the replica falls back to its own
/// counters (limits then hold per replica) and returns to Redis by itself.
/// </summary>
public sealed class RedisLimitStore(IConnectionMultiplexer redis, InProcessLimitStore fallback, ILogger<RedisLimitStore> logger) : ILimitStore
{
    private const string Prefix = "jackcwf:limits:";
    /// <summary>A slot of a replica that died is freed after this long.</summary>
    private const long SlotLeaseMs = 10 * 60 * 1000;
    private static readonly TimeSpan SpendTtl = TimeSpan.FromDays(40);

    // Sliding window on a sorted set of request times (server clock); returns -1 when allowed, else ms to wait.
    private const string HitScript = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local window = tonumber(ARGV[1])
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
        if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
          local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
          return tonumber(oldest[2]) + window - now
        end
        redis.call('ZADD', KEYS[1], now, ARGV[3])
        redis.call('PEXPIRE', KEYS[1], window)
        return -1
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

    private const string AddSpendScript = """
        if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('INCRBYFLOAT', KEYS[1], ARGV[1]) end
        return false
        """;

    // Check and reserve in one step, so concurrent calls on every replica see each other's reservations.
    private const string ReserveScript = """
        local v = tonumber(redis.call('GET', KEYS[1]) or '0')
        if ARGV[2] ~= '' and v >= tonumber(ARGV[2]) then return 0 end
        redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
        redis.call('EXPIRE', KEYS[1], ARGV[3])
        return 1
        """;

    private int _warned;

    public async ValueTask<TimeSpan?> HitAsync(string bucket, int limit, TimeSpan window)
    {
        try
        {
            var wait = (long)await redis.GetDatabase().ScriptEvaluateAsync(HitScript, [Prefix + bucket],
                [(long)window.TotalMilliseconds, limit, Guid.NewGuid().ToString("N")]);
            Recovered();
            return wait < 0 ? null : TimeSpan.FromMilliseconds(Math.Max(1, wait));
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            Degraded(e);
            return await fallback.HitAsync(bucket, limit, window);
        }
    }

    public async ValueTask<TimeSpan?> PeekAsync(string bucket, int limit, TimeSpan window)
    {
        try
        {
            var wait = (long)await redis.GetDatabase().ScriptEvaluateAsync(PeekScript, [Prefix + bucket], [(long)window.TotalMilliseconds, limit]);
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
        try
        {
            var ok = (long)await redis.GetDatabase().ScriptEvaluateAsync(EnterScript, [Prefix + bucket], [max, SlotLeaseMs, slot]);
            Recovered();
            return ok == 1 ? slot : null;
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            Degraded(e);
            return await fallback.TryEnterAsync(bucket, max);
        }
    }

    public async ValueTask LeaveAsync(string bucket, string slot)
    {
        if (slot == "local")
        {
            await fallback.LeaveAsync(bucket, slot);
            return;
        }
        try
        {
            await redis.GetDatabase().SortedSetRemoveAsync(Prefix + bucket, slot);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            // The lease expires on its own.
            Degraded(e);
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
            await redis.GetDatabase().ScriptEvaluateAsync(AddSpendScript, [SpendKey(userId, month)],
                [amount.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            Degraded(e);
        }
        await fallback.AddSpendAsync(userId, month, amount);
    }

    public async ValueTask<bool> TryReserveSpendAsync(Guid userId, string month, decimal amount, decimal? budget)
    {
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        try
        {
            var ok = (long)await redis.GetDatabase().ScriptEvaluateAsync(ReserveScript, [SpendKey(userId, month)],
                [amount.ToString(inv), budget?.ToString(inv) ?? "", (long)SpendTtl.TotalSeconds]);
            Recovered();
            if (ok == 1)
            {
                // Mirrored locally (as AddSpendAsync does), so an outage starts from a current figure.
                await fallback.AddSpendAsync(userId, month, amount);
            }
            return ok == 1;
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            Degraded(e);
            return await fallback.TryReserveSpendAsync(userId, month, amount, budget);
        }
    }

    private static RedisKey SpendKey(Guid userId, string month) => $"{Prefix}spend:{userId}:{month}";

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
