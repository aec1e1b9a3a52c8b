using Jackcwf.Api.Chat;
using StackExchange.Redis;

namespace Jackcwf.Api.Backplane;

/// <summary>A stop request for a generation running on another replica, sent over Redis pub/sub.</summary>
internal sealed class RedisStopSignal(IConnectionMultiplexer redis, ILogger<RedisStopSignal> logger) : IStopSignal
{
    internal static readonly RedisChannel Channel = RedisChannel.Literal("jackcwf:stop");

    public async Task PublishAsync(Guid messageId)
    {
        try
        {
            await redis.GetSubscriber().PublishAsync(Channel, messageId.ToString("N"));
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            // Without Redis only the owning replica can stop it; the request still answers 202.
            logger.LogWarning("Stop of {MessageId} could not be sent to the other replicas: {Error}", messageId, ex.GetType().Name);
        }
    }
}

/// <summary>Every replica listens for stop requests and stops the generation when it runs here.</summary>
internal sealed class RedisStopListener(IConnectionMultiplexer redis, GenerationRunner runner, ILogger<RedisStopListener> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Subscribing fails while Redis is down; once it succeeds the multiplexer restores it after every reconnect.
        for (var attempt = 1; !stoppingToken.IsCancellationRequested; attempt++)
        {
            try
            {
                await redis.GetSubscriber().SubscribeAsync(RedisStopSignal.Channel, (_, value) =>
                {
                    if (Guid.TryParse(value.ToString(), out var id) && runner.TryStop(id))
                    {
                        logger.LogInformation("Stopped generation {MessageId} on request from another replica", id);
                    }
                });
                return;
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException)
            {
                if (attempt == 1)
                {
                    logger.LogWarning("Stop signals from other replicas are not received until Redis is reachable: {Error}", ex.GetType().Name);
                }
                await Task.Delay(TimeSpan.FromSeconds(2), stoppingToken);
            }
        }
    }
}
