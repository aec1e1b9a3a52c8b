using StackExchange.Redis;

namespace Jackcwf.Api.Accounts;

/// <summary>
/// Cache invalidations over Redis pub/sub, so a revoked key or a disabled user is refused on every
/// replica at once. Local handlers run immediately too, so this replica never waits for Redis; while
/// Redis is down other replicas fall back on the cache's 30-second expiry.
/// </summary>
public sealed class RedisInvalidationBus : IInvalidationBus
{
    private const string ChannelPrefix = "jackcwf:invalidate:";
    private readonly IConnectionMultiplexer _redis;
    private readonly InProcessInvalidationBus _local;
    private readonly ILogger<RedisInvalidationBus> _logger;

    public RedisInvalidationBus(IConnectionMultiplexer redis, InProcessInvalidationBus local, ILogger<RedisInvalidationBus> logger)
    {
        _redis = redis;
        _local = local;
        _logger = logger;
    }

    public async Task PublishAsync(string topic, Guid id)
    {
        await _local.PublishAsync(topic, id);
        try
        {
            await _redis.GetSubscriber().PublishAsync(RedisChannel.Literal(ChannelPrefix + topic), id.ToString());
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            _logger.LogWarning("Could not tell other replicas about a {Topic} change ({Error}); their caches expire within 30 s", topic, e.GetType().Name);
        }
    }

    public void Subscribe(string topic, Action<Guid> handler)
    {
        _local.Subscribe(topic, handler);
        _redis.GetSubscriber().Subscribe(RedisChannel.Literal(ChannelPrefix + topic), (_, value) =>
        {
            if (Guid.TryParse(value.ToString(), out var id))
            {
                handler(id);
            }
        });
    }
}
