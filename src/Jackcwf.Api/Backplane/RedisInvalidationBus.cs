using System.Collections.Concurrent;
using Jackcwf.Api.Accounts;
using StackExchange.Redis;

namespace Jackcwf.Api.Backplane;

/// <summary>
/// Cache invalidations (a key revoked, a user disabled) for every replica: handled here at once and
/// published on Redis for the others. While Redis is down only this replica hears it; the caches'
/// own expiry (seconds) bounds how long the others can be stale.
/// </summary>
internal sealed class RedisInvalidationBus(IConnectionMultiplexer redis, ILogger<RedisInvalidationBus> logger) : IInvalidationBus
{
    internal static readonly RedisChannel Channel = RedisChannel.Literal("jackcwf:invalidate");

    private readonly ConcurrentDictionary<string, List<Action<Guid>>> _handlers = new();

    public async Task PublishAsync(string topic, Guid id)
    {
        Dispatch(topic, id);
        try
        {
            await redis.GetSubscriber().PublishAsync(Channel, $"{topic}|{id:N}");
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            logger.LogWarning("Invalidation {Topic} of {Id} reached only this replica (Redis: {Error}); the others' caches expire on their own", topic, id, ex.GetType().Name);
        }
    }

    public void Subscribe(string topic, Action<Guid> handler) =>
        _handlers.AddOrUpdate(topic, _ => [handler], (_, l) => { lock (l) { l.Add(handler); } return l; });

    /// <summary>A message from Redis (this replica's own ones come back too; invalidating twice is harmless).</summary>
    internal void OnMessage(RedisValue value)
    {
        var parts = value.ToString().Split('|', 2);
        if (parts.Length == 2 && Guid.TryParse(parts[1], out var id))
        {
            Dispatch(parts[0], id);
        }
    }

    private void Dispatch(string topic, Guid id)
    {
        if (!_handlers.TryGetValue(topic, out var list))
        {
            return;
        }
        Action<Guid>[] copy;
        lock (list)
        {
            copy = [.. list];
        }
        foreach (var handler in copy)
        {
            handler(id);
        }
    }
}
