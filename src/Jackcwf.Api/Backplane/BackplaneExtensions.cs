using Jackcwf.Api.Accounts;
using Jackcwf.Api.Chat;
using Jackcwf.Api.Configuration;
using Jackcwf.Api.Health;
using Jackcwf.Api.Limits;
using Microsoft.Extensions.Caching.StackExchangeRedis;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace Jackcwf.Api.Backplane;

public static class BackplaneExtensions
{
    /// <summary>
    /// The one place Redis is switched on. With <c>REDIS_URL</c> set, state is carried across replicas
    /// over one <see cref="IConnectionMultiplexer"/>: the event log of running generations becomes a
    /// Redis stream any replica can tail, stop requests reach the replica that runs the generation,
    /// rate and spending counters and access invalidations are shared, the response cache gets Redis
    /// as its second level, and the monitor checks Redis. Without it the features' in-process
    /// implementations stay (one replica). The features register theirs with TryAdd and this replaces
    /// them, so the order of the Add calls does not matter.
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
        // The Redis stores fall back to the in-process ones while Redis is unreachable.
        s.TryAddSingleton<InProcessLimitStore>();
        s.Replace(ServiceDescriptor.Singleton<ILimitStore, RedisLimitStore>());
        s.TryAddSingleton<InProcessInvalidationBus>();
        s.Replace(ServiceDescriptor.Singleton<IInvalidationBus, RedisInvalidationBus>());
        s.AddSingleton<RedisMemoryPressure>();
        s.AddHostedService(sp => sp.GetRequiredService<RedisMemoryPressure>());
        s.AddStackExchangeRedisCache(_ => { });
        s.AddOptions<RedisCacheOptions>().Configure<IServiceProvider>((o, sp) =>
            o.ConnectionMultiplexerFactory = () => Task.FromResult(sp.GetRequiredService<IConnectionMultiplexer>()));
        s.AddHostedService<RedisStopListener>();
        s.AddSingleton<IDependencyProbe, RedisProbe>();
        return builder;
    }
}
