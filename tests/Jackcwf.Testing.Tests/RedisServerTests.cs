using StackExchange.Redis;

namespace Jackcwf.Testing.Tests;

public sealed class RedisServerTests
{
    [Fact]
    public async Task ServerStopsAndStartsAgainOnTheSamePortWithoutData()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var server = await RedisServer.StartAsync(cancellationToken: ct);
        Assert.InRange(server.Port, 1024, 32767);
        await using (var redis = await ConnectionMultiplexer.ConnectAsync(server.Configuration))
        {
            await redis.GetDatabase().StringSetAsync("greeting", "hello");
            Assert.Equal("hello", (string?)await redis.GetDatabase().StringGetAsync("greeting"));
        }

        var pid = server.Pid;
        await server.StopAsync();

        Assert.False(server.IsRunning);
        Assert.False(await server.PingAsync(ct));

        await server.StartAsync(ct);

        Assert.NotEqual(pid, server.Pid);
        await using var after = await ConnectionMultiplexer.ConnectAsync(server.Configuration);
        Assert.False(await after.GetDatabase().KeyExistsAsync("greeting"));
    }

    [Fact]
    public async Task KilledServerIsDownUntilStarted()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var server = await RedisServer.StartAsync(cancellationToken: ct);

        server.Kill();

        Assert.False(await server.PingAsync(ct));
        await server.StartAsync(ct);
        Assert.True(await server.PingAsync(ct));
    }

    [Fact]
    public async Task TestDatabasesAreDistinctEmptyAndFlushedOnDispose()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var server = await RedisServer.StartAsync(cancellationToken: ct);
        await using var first = await server.CreateDatabaseAsync(ct);
        int secondNumber;
        await using (var second = await server.CreateDatabaseAsync(ct))
        {
            secondNumber = second.Database;
            Assert.NotEqual(first.Database, second.Database);
            Assert.NotEqual(0, second.Database);
            Assert.Equal($"redis://127.0.0.1:{server.Port}/{second.Database}", second.Url);
            await second.GetDatabase().StringSetAsync("k", "v");
            await using var viaConfiguration = await ConnectionMultiplexer.ConnectAsync(second.Configuration);
            Assert.Equal("v", (string?)await viaConfiguration.GetDatabase().StringGetAsync("k"));
            Assert.False(await first.GetDatabase().KeyExistsAsync("k"));
        }

        await using var redis = await ConnectionMultiplexer.ConnectAsync(server.Configuration);
        Assert.False(await redis.GetDatabase(secondNumber).KeyExistsAsync("k"));
    }
}
