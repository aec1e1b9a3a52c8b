using System.Globalization;
using Jackcwf.Api.Health;
using Jackcwf.Api.Telemetry;
using StackExchange.Redis;

namespace Jackcwf.Api.Backplane;

/// <summary>Turns <c>REDIS_URL</c> into StackExchange.Redis options that never stop the service from starting.</summary>
public static class RedisUrl
{
    /// <summary>
    /// Accepts <c>redis://[[user]:password@]host[:port][/db]</c>, <c>rediss://…</c> (TLS), the Sentinel form
    /// <c>redis+sentinel://[[user]:password@]sentinel1:26379,sentinel2:26379/master-name[/db]</c> and
    /// StackExchange.Redis configuration strings (<c>host:port,password=…</c>, with <c>serviceName=…</c> for Sentinel).
    /// </summary>
    public static ConfigurationOptions Parse(string url)
    {
        ConfigurationOptions options;
        if (url.StartsWith("redis+sentinel://", StringComparison.OrdinalIgnoreCase) || url.StartsWith("rediss+sentinel://", StringComparison.OrdinalIgnoreCase))
        {
            options = ParseSentinel(url);
        }
        else if (url.StartsWith("redis://", StringComparison.OrdinalIgnoreCase) || url.StartsWith("rediss://", StringComparison.OrdinalIgnoreCase))
        {
            if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Host.Length == 0)
            {
                throw new FormatException("REDIS_URL must look like redis://[:password@]host:6379[/db].");
            }
            options = new ConfigurationOptions { Ssl = uri.Scheme.Equals("rediss", StringComparison.OrdinalIgnoreCase) };
            options.EndPoints.Add(uri.Host, uri.Port > 0 ? uri.Port : 6379);
            if (uri.UserInfo.Length > 0)
            {
                var parts = uri.UserInfo.Split(':', 2);
                if (parts.Length == 2)
                {
                    options.User = parts[0].Length > 0 ? Uri.UnescapeDataString(parts[0]) : null;
                    options.Password = Uri.UnescapeDataString(parts[1]);
                }
                else
                {
                    // redis://secret@host: a lone user-info part is the password (as redis-cli reads it).
                    options.Password = Uri.UnescapeDataString(parts[0]);
                }
            }
            var path = uri.AbsolutePath.Trim('/');
            if (path.Length > 0)
            {
                options.DefaultDatabase = int.TryParse(path, NumberStyles.None, CultureInfo.InvariantCulture, out var db)
                    ? db
                    : throw new FormatException("REDIS_URL: the path must be a database number (redis://host:6379/0).");
            }
        }
        else
        {
            try
            {
                options = ConfigurationOptions.Parse(url);
            }
            catch (ArgumentException)
            {
                // The parser's message may quote the string, password included: name the fix instead.
                throw new FormatException("REDIS_URL is neither a redis:// URL nor a StackExchange.Redis configuration string (host:6379,password=…; sentinels with serviceName=…).");
            }
            if (options.EndPoints.Count == 0)
            {
                throw new FormatException("REDIS_URL names no server; use redis://host:6379, or sentinel1:26379,sentinel2:26379,serviceName=mymaster.");
            }
        }
        // Start even when Redis is down and keep reconnecting; a failure must never stop the service.
        options.AbortOnConnectFail = false;
        options.ConnectTimeout = 3000;
        options.SyncTimeout = 2000;
        options.AsyncTimeout = 3000;
        options.ConnectRetry = 1;
        options.KeepAlive = 5;
        options.ReconnectRetryPolicy = new ExponentialRetry(500, 2000);
        // While disconnected, fail at once (every caller has a fallback) instead of queueing for seconds.
        options.BacklogPolicy = BacklogPolicy.FailFast;
        options.ClientName ??= "jackcwf";
        return options;
    }

    /// <summary>
    /// The sentinels are asked for the current master of the named service; StackExchange.Redis then
    /// follows every failover they announce (<c>+switch-master</c>) by itself. The password is sent to the
    /// sentinels and to the Redis servers alike, so give the sentinels the same <c>requirepass</c>.
    /// </summary>
    private static ConfigurationOptions ParseSentinel(string url)
    {
        var rest = url[(url.IndexOf("://", StringComparison.Ordinal) + 3)..];
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        var authority = slash < 0 ? rest : rest[..slash];
        var path = slash < 0 ? "" : rest[(slash + 1)..].Trim('/');
        var options = new ConfigurationOptions { Ssl = url.StartsWith("rediss", StringComparison.OrdinalIgnoreCase) };
        var at = authority.LastIndexOf('@');
        if (at >= 0)
        {
            var parts = authority[..at].Split(':', 2);
            if (parts.Length == 2)
            {
                options.User = parts[0].Length > 0 ? Uri.UnescapeDataString(parts[0]) : null;
                options.Password = Uri.UnescapeDataString(parts[1]);
            }
            else
            {
                options.Password = Uri.UnescapeDataString(parts[0]);
            }
            authority = authority[(at + 1)..];
        }
        foreach (var sentinel in authority.Split(','))
        {
            var colon = sentinel.LastIndexOf(':');
            var host = colon < 0 ? sentinel : sentinel[..colon];
            var port = 26379;
            if (host.Length == 0 || (colon >= 0 && (!int.TryParse(sentinel[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out port) || port is < 1 or > 65535)))
            {
                throw new FormatException($"REDIS_URL has an invalid sentinel \"{sentinel}\"; write redis+sentinel://host1:26379,host2:26379,host3:26379/mymaster.");
            }
            options.EndPoints.Add(host, port);
        }
        var segments = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (segments.Length is 0 or > 2)
        {
            throw new FormatException("REDIS_URL (Sentinel) must name the master after the sentinels: redis+sentinel://host1:26379,host2:26379/mymaster[/db].");
        }
        options.ServiceName = Uri.UnescapeDataString(segments[0]);
        if (segments.Length == 2)
        {
            options.DefaultDatabase = int.TryParse(segments[1], NumberStyles.None, CultureInfo.InvariantCulture, out var db)
                ? db
                : throw new FormatException("REDIS_URL (Sentinel): the part after the master name must be a database number (…/mymaster/0).");
        }
        return options;
    }
}

/// <summary>
/// Owns the start-up side of the backplane: the multiplexer is a constructor argument, so it connects
/// while the host starts (never lazily under the first burst of requests); reports the state as
/// <c>jackcwf_redis_connected</c> and logs every loss and recovery.
/// </summary>
internal sealed class RedisConnectionMonitor(IConnectionMultiplexer redis, JackcwfMetrics metrics, ILogger<RedisConnectionMonitor> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        metrics.RedisState = () => redis.IsConnected;
        redis.ConnectionFailed += OnFailed;
        redis.ConnectionRestored += OnRestored;
        if (redis.IsConnected)
        {
            logger.LogInformation("Redis backplane connected ({Endpoints})", Endpoints());
        }
        else
        {
            logger.LogWarning("Redis backplane unreachable at start-up ({Endpoints}): serving with in-process streams until it connects", Endpoints());
        }
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        redis.ConnectionFailed -= OnFailed;
        redis.ConnectionRestored -= OnRestored;
        return Task.CompletedTask;
    }

    private string Endpoints() => string.Join(",", redis.GetEndPoints().Select(e => e.ToString()));

    private void OnFailed(object? sender, ConnectionFailedEventArgs e)
    {
        if (FailoverThreads.Raise())
        {
            logger.LogInformation("Thread pool minimum raised to {Threads} while the Redis client reconnects (lowered back {Hold} s after its last loss or recovery)",
                FailoverThreads.Threads, FailoverThreads.Hold.TotalSeconds);
        }
        logger.LogWarning("Redis backplane connection lost ({Endpoint}, {FailureType}): streams of other replicas are followed through the database until it is back",
            e.EndPoint?.ToString(), e.FailureType);
    }

    private void OnRestored(object? sender, ConnectionFailedEventArgs e)
    {
        FailoverThreads.Raise();
        logger.LogInformation("Redis backplane connection restored ({Endpoint})", e.EndPoint?.ToString());
    }
}

/// <summary>
/// Raises the thread pool's minimum to <see cref="Threads"/> while the Redis client follows a lost connection,
/// and lowers it back <see cref="Hold"/> after the last loss or recovery.
/// </summary>
/// <remarks>
/// StackExchange.Redis follows a Sentinel failover with blocking calls on pool threads (synchronous sentinel
/// commands waiting in <c>Monitor.Wait</c> for a reply that itself needs a pool thread, a blocking reconfigure):
/// with the default minimum (one thread per core) a 2-core replica starved for seconds (docs/deployment/capacity.md,
/// "Runtime settings"). A minimum of 32 at all times prevented that but cost service CPU at low concurrency
/// (+12 % per /v1 request at 16 clients, +10 % per chat message), so it is raised only from the first lost
/// connection until the client has been quiet for <see cref="Hold"/>. Hand-written: the runtime has no
/// scoped minimum. A minimum set from outside (<c>DOTNET_ThreadPool_ForceMinWorkerThreads</c>) that is already
/// higher is left alone.
/// </remarks>
internal static class FailoverThreads
{
    public const int Threads = 32;
    public static readonly TimeSpan Hold = TimeSpan.FromSeconds(60);

    private static readonly Lock s_lock = new();
    private static ITimer? s_lower;
    private static (int Worker, int Io)? s_before;

    /// <summary>True while the minimum is raised.</summary>
    public static bool Raised
    {
        get
        {
            lock (s_lock)
            {
                return s_before is not null;
            }
        }
    }

    /// <summary>Raises the minimum (or keeps it raised) for another <see cref="Hold"/>; true when this call raised it.</summary>
    public static bool Raise()
    {
        lock (s_lock)
        {
            var raised = false;
            if (s_before is null)
            {
                ThreadPool.GetMinThreads(out var worker, out var io);
                if (worker >= Threads)
                {
                    return false;
                }
                s_before = (worker, io);
                ThreadPool.SetMinThreads(Threads, Math.Max(io, Threads));
                raised = true;
            }
            s_lower ??= TimeProvider.System.CreateTimer(_ => Lower(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            s_lower.Change(Hold, Timeout.InfiniteTimeSpan);
            return raised;
        }
    }

    /// <summary>Lowers the minimum back to what it was before the first raise (also what the timer does).</summary>
    public static void Lower()
    {
        lock (s_lock)
        {
            if (s_before is { } before)
            {
                ThreadPool.SetMinThreads(before.Worker, before.Io);
                s_before = null;
            }
        }
    }
}

/// <summary>The monitor's <c>redis</c> check: a PING within the health-check budget.</summary>
internal sealed class RedisProbe(IConnectionMultiplexer redis) : IDependencyProbe
{
    public string Name => "redis";

    public async Task<bool> CheckAsync(CancellationToken ct)
    {
        if (!redis.IsConnected)
        {
            return false;
        }
        await redis.GetDatabase().PingAsync().WaitAsync(ct);
        return true;
    }
}
