namespace Jackcwf.Api.Accounts;

/// <summary>
/// Creates the access cache and the revocation tracker at start, before the listener opens. Each
/// subscribes to the invalidation bus when it is created, and with Redis that is a synchronous
/// round trip: created by the first requests instead, a burst of them (a load balancer sending a
/// new replica its share at once) queued behind that call on a starved thread pool, and one of them
/// failed with a Redis timeout (a 500). When Redis is not connected now, they are created by the
/// first request that needs them, as before.
/// </summary>
internal sealed class AccessSubscriptionsWarmUp(IServiceProvider services, ILogger<AccessSubscriptionsWarmUp> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (services.GetService<StackExchange.Redis.IConnectionMultiplexer>() is { IsConnected: false })
        {
            // Redis is away: subscribing now would wait for its timeout before the listener opens.
            return Task.CompletedTask;
        }
        try
        {
            services.GetRequiredService<UserAccessCache>();
            services.GetRequiredService<AccessRevocations>();
        }
        catch (Exception e) when (e is StackExchange.Redis.RedisException or TimeoutException)
        {
            logger.LogWarning("Could not subscribe to access invalidations at start ({Error}); the first request that needs them will", e.GetType().Name);
        }
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
