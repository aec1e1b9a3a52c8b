using Jackcwf.Api.Ai.Pipeline;
using Jackcwf.Api.Backplane;
using Jackcwf.Testing;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using StackExchange.Redis;

namespace Jackcwf.Api.Tests;

/// <summary>
/// The response cache's memory stays bounded where it lives: a replica keeps at most RESPONSE_CACHE_LOCAL_MB of
/// cached answers, and new answers stay out of Redis while Redis is 70 % full against its maxmemory (Redis runs with
/// noeviction: a full Redis would refuse the limits' and the event log's writes too). The real Program runs in the
/// test process on a SQLite file of its own; Redis is a private server whose maxmemory the test sets.
/// </summary>
public sealed class ResponseCacheMemoryTests
{
    private static readonly CancellationToken Ct = TestContext.Current.CancellationToken;

    private static WebApplicationFactory<Program> App(DirectoryInfo dir, Dictionary<string, string> settings) =>
        new WebApplicationFactory<Program>().WithWebHostBuilder(web =>
        {
            web.UseEnvironment("Production");
            web.UseSetting("Database:Url", $"sqlite:///{dir.FullName}/jackcwf.db");
            web.UseSetting("Backup:IntervalHours", "0");
            web.UseSetting("Monitoring:Enabled", "false");
            web.UseSetting("ResponseCache:Mode", "exact");
            foreach (var (key, value) in settings)
            {
                web.UseSetting(key, value);
            }
        });

    private static CachedAnswer Answer(int i, int chars) => new("demo/echo", [$"{i} " + new string('x', chars)], "stop", 10, 20);

    /// <summary><c>jackcwf_response_cache_redis_writes_paused</c> on <c>/metrics</c> reaches <paramref name="expected"/> (the exporter may serve a scrape it made moments before).</summary>
    private static async Task PausedGaugeAsync(WebApplicationFactory<Program> factory, int expected)
    {
        using var client = factory.CreateClient();
        var gauge = new System.Text.RegularExpressions.Regex(@"^jackcwf_response_cache_redis_writes_paused(\{[^}]*\})? (\d+)", System.Text.RegularExpressions.RegexOptions.Multiline);
        string? seen = null;
        for (var i = 0; i < 50 && seen != expected.ToString(System.Globalization.CultureInfo.InvariantCulture); i++)
        {
            if (i > 0)
            {
                await Task.Delay(100, Ct);
            }
            seen = gauge.Match(await client.GetStringAsync("/metrics", Ct)) is { Success: true } m ? m.Groups[2].Value : null;
        }
        Assert.Equal(expected.ToString(System.Globalization.CultureInfo.InvariantCulture), seen);
    }

    [Theory]
    [InlineData(1, false)]
    [InlineData(64, true)]
    public async Task A_replica_keeps_at_most_its_megabytes_of_cached_answers(int megabytes, bool allKept)
    {
        var dir = Directory.CreateTempSubdirectory("jackcwf-rc-");
        try
        {
            await using var factory = App(dir, new() { ["ResponseCache:LocalMegabytes"] = megabytes.ToString(System.Globalization.CultureInfo.InvariantCulture) });
            var store = factory.Services.GetRequiredService<IResponseCacheStore>();
            // 100 answers of 40,000 characters: about 4 MB of payload.
            for (var i = 0; i < 100; i++)
            {
                await store.SetAsync($"test:rc:{i}", Answer(i, 40_000), TimeSpan.FromHours(1), Ct);
            }
            var kept = 0;
            for (var i = 0; i < 100; i++)
            {
                if (await store.GetAsync<CachedAnswer>($"test:rc:{i}", Ct) is { } hit)
                {
                    Assert.StartsWith($"{i} ", hit.Chunks[0]);
                    kept++;
                }
            }
            if (allKept)
            {
                Assert.Equal(100, kept);
            }
            else
            {
                // 1 MB holds about 25 of them; some are kept, never all.
                Assert.InRange(kept, 1, 40);
            }
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task While_Redis_is_nearly_full_new_answers_stay_out_of_it_and_are_still_served_from_memory()
    {
        var dir = Directory.CreateTempSubdirectory("jackcwf-rc-");
        await using var redis = await RedisServer.StartAsync(cancellationToken: Ct);
        try
        {
            await using var admin = await ConnectionMultiplexer.ConnectAsync(redis.Configuration + ",allowAdmin=true");
            var server = admin.GetServer(admin.GetEndPoints()[0]);
            var db = admin.GetDatabase();
            await using var factory = App(dir, new() { ["Redis:Url"] = redis.Url });
            var store = factory.Services.GetRequiredService<IResponseCacheStore>();
            var pressure = factory.Services.GetRequiredService<RedisMemoryPressure>();

            async Task<long> UsedAsync() => long.Parse(
                System.Text.RegularExpressions.Regex.Match((await server.InfoRawAsync("memory"))!, @"used_memory:(\d+)").Groups[1].Value,
                System.Globalization.CultureInfo.InvariantCulture);

            // No maxmemory: answers go to Redis.
            await pressure.RefreshAsync();
            Assert.False(pressure.CacheWritesPaused);
            await store.SetAsync("test:rc:free", Answer(1, 1_000), TimeSpan.FromHours(1), Ct);
            Assert.True(await db.KeyExistsAsync("test:rc:free"));

            // 80 % full: a new answer stays in this replica's memory only.
            await server.ConfigSetAsync("maxmemory", (long)(await UsedAsync() / 0.8));
            await pressure.RefreshAsync();
            Assert.True(pressure.CacheWritesPaused);
            await store.SetAsync("test:rc:full", Answer(2, 1_000), TimeSpan.FromHours(1), Ct);
            Assert.False(await db.KeyExistsAsync("test:rc:full"));
            Assert.Equal(Answer(2, 1_000).Chunks, (await store.GetAsync<CachedAnswer>("test:rc:full", Ct))!.Chunks);
            // What an operator sees: the gauge says so.
            await PausedGaugeAsync(factory, 1);

            // Room again (25 %): answers go to Redis again.
            await server.ConfigSetAsync("maxmemory", await UsedAsync() * 4);
            await pressure.RefreshAsync();
            Assert.False(pressure.CacheWritesPaused);
            await store.SetAsync("test:rc:again", Answer(3, 1_000), TimeSpan.FromHours(1), Ct);
            Assert.True(await db.KeyExistsAsync("test:rc:again"));
            await PausedGaugeAsync(factory, 0);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
