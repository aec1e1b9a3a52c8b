using System.Globalization;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace Jackcwf.Api.Backplane;

/// <summary>
/// How full Redis is against its <c>maxmemory</c>, read every 10 s (<c>INFO memory</c> on the primary, from a script). Redis runs
/// with <c>noeviction</c>: a full Redis refuses every write, the limits' windows and the event log's streams among
/// them. The response cache is the one writer that can do without Redis, so it stops writing there once Redis is
/// <see cref="CacheWriteLimit"/> full and goes on in memory (<see cref="Ai.Pipeline.HybridResponseCacheStore"/>);
/// its entries in Redis then leave with their time to live. Written by hand: no library this project uses reads
/// a server's memory against its limit.
/// </summary>
public sealed class RedisMemoryPressure : BackgroundService
{
    private readonly IConnectionMultiplexer redis;
    private readonly bool cacheOn;
    private readonly ILogger<RedisMemoryPressure> logger;

    public RedisMemoryPressure(IConnectionMultiplexer redis, IOptions<Ai.Pipeline.ResponseCacheOptions> cache, Telemetry.JackcwfMetrics metrics,
        ILogger<RedisMemoryPressure> logger)
    {
        this.redis = redis;
        this.logger = logger;
        cacheOn = cache.Value.Mode != Ai.Pipeline.ResponseCacheOptions.Off;
        metrics.RedisCacheWritesPaused = () => CacheWritesPaused;
    }

    /// <summary>Above this share of <c>maxmemory</c> the response cache writes no more to Redis.</summary>
    public const double CacheWriteLimit = 0.7;

    private static readonly TimeSpan Every = TimeSpan.FromSeconds(10);
    private const string InfoScript = "return redis.call('INFO', 'memory')";
    private volatile bool _cacheWritesPaused;
    private int _unreadable;

    /// <summary>The response cache writes to memory only: Redis was at least <see cref="CacheWriteLimit"/> full when last read.</summary>
    public bool CacheWritesPaused => _cacheWritesPaused;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!cacheOn)
        {
            // Nothing writes to Redis that could do without it: no reads at all (RESPONSE_CACHE is off by default).
            return;
        }
        using var timer = new PeriodicTimer(Every);
        try
        {
            do
            {
                await RefreshAsync();
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Reads Redis's memory once; a Redis that cannot be read (down, <c>INFO</c> refused) keeps the last state.</summary>
    public async Task RefreshAsync()
    {
        string info;
        try
        {
            // Through a script: it runs on the primary (where the writes go), and the client sends INFO itself only
            // with admin mode on, which the service never turns on (it would also allow CONFIG, FLUSHALL and the like).
            info = (string?)await redis.GetDatabase().ScriptEvaluateAsync(InfoScript) ?? "";
        }
        catch (Exception e) when (e is RedisConnectionException or RedisTimeoutException or TimeoutException)
        {
            // Redis unreachable: the backplane's own log says so, and no write reaches it meanwhile anyway.
            return;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Refused (an ACL without INFO or EVAL, a proxy): say so once; the cache then writes however full Redis is.
            if (Interlocked.Exchange(ref _unreadable, 1) == 0)
            {
                logger.LogWarning("Redis's memory cannot be read ({Error}): the response cache writes to Redis however full it is", e.GetType().Name);
            }
            return;
        }
        Volatile.Write(ref _unreadable, 0);
        // Redis counts its used memory without the replicas' output buffers against maxmemory; so does this.
        var max = Field(info, "maxmemory");
        var used = Field(info, "used_memory");
        if (max is not > 0 || used is null)
        {
            // No maxmemory: Redis grows until the machine's memory ends, and nothing here can tell how near that is.
            Set(false, 0);
            return;
        }
        var fill = (double)(used.Value - (Field(info, "mem_clients_slaves") ?? 0)) / max.Value;
        Set(fill >= CacheWriteLimit, fill);
    }

    private void Set(bool paused, double fill)
    {
        if (_cacheWritesPaused == paused)
        {
            return;
        }
        _cacheWritesPaused = paused;
        if (paused)
        {
            logger.LogWarning("Redis is {Fill:P0} full (maxmemory): the response cache stores new answers in this replica's memory only until it is below {Limit:P0}",
                fill, CacheWriteLimit);
        }
        else
        {
            logger.LogInformation("Redis is below {Limit:P0} of its maxmemory again: the response cache stores answers in Redis", CacheWriteLimit);
        }
    }

    private static long? Field(string info, string name)
    {
        var at = 0;
        while ((at = info.IndexOf(name + ":", at, StringComparison.Ordinal)) >= 0)
        {
            // A whole line's name: at the start of the text or of a line.
            if (at == 0 || info[at - 1] == '\n')
            {
                var start = at + name.Length + 1;
                var end = info.IndexOfAny(['\r', '\n'], start);
                return long.TryParse(info.AsSpan(start, (end < 0 ? info.Length : end) - start), NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : null;
            }
            at += name.Length;
        }
        return null;
    }
}
