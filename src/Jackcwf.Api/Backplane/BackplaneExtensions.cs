using Jackcwf.Api.Chat;
using Jackcwf.Api.Configuration;
using Jackcwf.Api.Health;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace Jackcwf.Api.Backplane;

public static class BackplaneExtensions
{
    /// <summary>
    /// With <c>REDIS_URL</c> set, carries state across replicas: the event log of running generations
    /// becomes a Redis stream any replica can tail, stop requests reach the replica that runs the
    /// generation, and the monitor checks Redis. The one <see cref="IConnectionMultiplexer"/> is also
    /// what the limit store and the invalidation bus use when present. Without it the in-process
    /// implementations stay (one replica). Runs after AddChat, whose registrations it replaces.
    /// </summary>
    public static IHostApplicationBuilder AddBackplane(this IHostApplicationBuilder builder)
    {
        var s = builder.Services;
        s.AddSettings<RedisOptions>(RedisOptions.Section);
        s.AddSingleton<IValidateOptions<RedisOptions>, ValidateRedisOptions>();
        // Read before the container exists: it decides which implementations are registered.
        var url = builder.Configuration[RedisOptions.UrlKey];
        if (string.IsNullOrWhiteSpace(url))
        {
            return builder;
        }
        var options = RedisUrl.Parse(url);
        s.AddSingleton<IConnectionMultiplexer>(sp =>
        {
            // AbortOnConnectFail=false: returns after the first attempt even when Redis is down and keeps retrying.
            var logger = sp.GetRequiredService<ILoggerFactory>().CreateLogger("Jackcwf.Backplane");
            try
            {
                return ConnectionMultiplexer.Connect(options);
            }
            catch (RedisConnectionException ex)
            {
                logger.LogWarning("Redis backplane: first connection failed ({Error}); retrying in the background", ex.Message);
                throw;
            }
        });
        // Hosted first, so the multiplexer connects while the host starts, before any request arrives.
        s.Insert(0, ServiceDescriptor.Singleton<IHostedService, RedisConnectionMonitor>());
        s.AddSingleton<RedisNotifications>();
        s.Replace(ServiceDescriptor.Singleton<IGenerationEventLog, RedisGenerationEventLog>());
        s.Replace(ServiceDescriptor.Singleton<IStopSignal, RedisStopSignal>());
        s.AddHostedService<RedisStopListener>();
        s.AddSingleton<IDependencyProbe, RedisProbe>();
        return builder;
    }
}
