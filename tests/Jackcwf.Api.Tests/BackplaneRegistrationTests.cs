using Jackcwf.Api.Accounts;
using Jackcwf.Api.Backplane;
using Jackcwf.Api.Chat;
using Jackcwf.Api.Limits;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Jackcwf.Api.Tests;

/// <summary>
/// Redis is switched on in one place (AddBackplane), and the order of the feature registrations does
/// not matter: with REDIS_URL every cross-replica service is the Redis one, exactly once.
/// </summary>
public sealed class BackplaneRegistrationTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void With_redis_every_cross_replica_service_is_the_redis_one_whatever_the_order(bool backplaneFirst)
    {
        var services = Register("redis://127.0.0.1:6379", backplaneFirst);

        Assert.Equal(typeof(RedisGenerationEventLog), Single<IGenerationEventLog>(services).ImplementationType);
        Assert.Equal(typeof(RedisStopSignal), Single<IStopSignal>(services).ImplementationType);
        Assert.Equal(typeof(RedisLimitStore), Single<ILimitStore>(services).ImplementationType);
        Assert.Equal(typeof(RedisInvalidationBus), Single<IInvalidationBus>(services).ImplementationType);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Without_redis_the_in_process_implementations_stay(bool backplaneFirst)
    {
        var services = Register(null, backplaneFirst);

        Assert.Equal(typeof(InProcessGenerationEventLog), Single<IGenerationEventLog>(services).ImplementationType);
        Assert.Equal(typeof(InProcessStopSignal), Single<IStopSignal>(services).ImplementationType);
        Assert.NotEqual(typeof(RedisLimitStore), Single<ILimitStore>(services).ImplementationType);
        Assert.NotEqual(typeof(RedisInvalidationBus), Single<IInvalidationBus>(services).ImplementationType);
        Assert.DoesNotContain(services, d => d.ServiceType == typeof(StackExchange.Redis.IConnectionMultiplexer));
    }

    private static IServiceCollection Register(string? redisUrl, bool backplaneFirst)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Redis:Url"] = redisUrl });
        if (backplaneFirst)
        {
            builder.AddBackplane();
        }
        builder.AddAccounts();
        builder.AddLimits();
        builder.AddChat();
        if (!backplaneFirst)
        {
            builder.AddBackplane();
        }
        return builder.Services;
    }

    private static ServiceDescriptor Single<T>(IServiceCollection services) => Assert.Single(services, d => d.ServiceType == typeof(T));
}
