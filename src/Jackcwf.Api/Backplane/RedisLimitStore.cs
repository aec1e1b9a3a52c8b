using System.Globalization;
using Jackcwf.Api.Limits;
using StackExchange.Redis;

namespace Jackcwf.Api.Backplane;

/// <summary>
/// The limit counters in Redis, so a user's rate, concurrency and month-to-date spend are one number
/// across all replicas (not N per-replica numbers). Each operation is one atomic script. While Redis
/// is unreachable the in-process store answers (limits hold per replica) and Redis takes over again
/// once it is back; the spend is re-seeded from the ledger then, as on a cold start.
/// </summary>
internal sealed class RedisLimitStore(IConnectionMultiplexer redis, ILogger<RedisLimitStore> logger) : ILimitStore
{
    private const string Prefix = "jackcwf:limit:";

    /// <summary>A replica that dies inside a request never leaves; its slot is forgotten after this.</summary>
    private static readonly TimeSpan InFlightTtl = TimeSpan.FromMinutes(15);

    private static readonly TimeSpan SpendTtl = TimeSpan.FromDays(40);

    // Server time, so replicas with skewed clocks share one window.
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

    private const string EnterScript = """
        local c = redis.call('INCR', KEYS[1])
        if c > tonumber(ARGV[1]) then
          redis.call('DECR', KEYS[1])
          return 0
        end
        redis.call('PEXPIRE', KEYS[1], ARGV[2])
        return 1
        """;

    private const string LeaveScript = """
        if redis.call('DECR', KEYS[1]) < 0 then redis.call('SET', KEYS[1], 0, 'PX', ARGV[1]) end
        return 0
        """;

    private const string AddSpendScript = """
        if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('INCRBYFLOAT', KEYS[1], ARGV[1]) end
        return 0
        """;

    private readonly InProcessLimitStore _local = new();
    private long _lastWarning;

    public async ValueTask<TimeSpan?> HitAsync(string bucket, int limit, TimeSpan window)
    {
        var result = await TryAsync(db => db.ScriptEvaluateAsync(HitScript, [Prefix + bucket],
            [(long)window.TotalMilliseconds, limit, Guid.NewGuid().ToString("N")]));
        if (result is null)
        {
            return await _local.HitAsync(bucket, limit, window);
        }
        var wait = (long)result;
        return wait < 0 ? null : TimeSpan.FromMilliseconds(Math.Max(1, wait));
    }

    public async ValueTask<bool> TryEnterAsync(string bucket, int max)
    {
        var result = await TryAsync(db => db.ScriptEvaluateAsync(EnterScript, [Prefix + bucket], [max, (long)InFlightTtl.TotalMilliseconds]));
        return result is null ? await _local.TryEnterAsync(bucket, max) : (long)result == 1;
    }

    public async ValueTask LeaveAsync(string bucket)
    {
        if (await TryAsync(db => db.ScriptEvaluateAsync(LeaveScript, [Prefix + bucket], [(long)InFlightTtl.TotalMilliseconds])) is null)
        {
            await _local.LeaveAsync(bucket);
        }
    }

    public async ValueTask<decimal?> GetSpendAsync(Guid userId, string month)
    {
        var result = await TryAsync(async db => RedisResult.Create(await db.StringGetAsync(SpendKey(userId, month))));
        if (result is null)
        {
            return await _local.GetSpendAsync(userId, month);
        }
        return result.IsNull ? null : ParseDecimal(result.ToString());
    }

    public async ValueTask<decimal> SeedSpendAsync(Guid userId, string month, decimal total)
    {
        var key = SpendKey(userId, month);
        var result = await TryAsync(async db =>
        {
            await db.StringSetAsync(key, total.ToString(CultureInfo.InvariantCulture), SpendTtl, When.NotExists);
            return RedisResult.Create(await db.StringGetAsync(key));
        });
        if (result is null || result.IsNull)
        {
            return await _local.SeedSpendAsync(userId, month, total);
        }
        return ParseDecimal(result.ToString()) ?? total;
    }

    public async ValueTask AddSpendAsync(Guid userId, string month, decimal amount)
    {
        if (await TryAsync(db => db.ScriptEvaluateAsync(AddSpendScript, [SpendKey(userId, month)], [amount.ToString(CultureInfo.InvariantCulture)])) is null)
        {
            await _local.AddSpendAsync(userId, month, amount);
        }
    }

    private static RedisKey SpendKey(Guid userId, string month) => $"{Prefix}spend:{userId:N}:{month}";

    private static decimal? ParseDecimal(string? value) =>
        decimal.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : null;

    /// <summary>Runs one Redis operation; null when Redis is unreachable or failed (the caller falls back).</summary>
    private async Task<RedisResult?> TryAsync(Func<IDatabase, Task<RedisResult>> operation)
    {
        if (!redis.IsConnected)
        {
            return null;
        }
        try
        {
            return await operation(redis.GetDatabase());
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            var now = Environment.TickCount64;
            if (now - Interlocked.Read(ref _lastWarning) > 60_000)
            {
                Interlocked.Exchange(ref _lastWarning, now);
                logger.LogWarning("Limit counters fall back to this replica while Redis fails: {Error}", ex.GetType().Name);
            }
            return null;
        }
    }
}
