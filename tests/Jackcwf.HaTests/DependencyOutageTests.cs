using System.Diagnostics;
using System.Net;
using Jackcwf.Testing;

namespace Jackcwf.HaTests;

public sealed class DependencyOutageTests(HaFixture fixture, ITestOutputHelper output)
{
    [Fact]
    public async Task Service_keeps_serving_through_a_Redis_outage_and_recovers_from_a_PostgreSQL_restart_without_losing_messages()
    {
        await fixture.EnsureWholeAsync();
        var cluster = fixture.Cluster;
        using var probe = new HttpClient { Timeout = TimeSpan.FromSeconds(15) };
        await using var driver = await LoadDriver.CreateAsync(cluster, workers: 6, words: 30);
        driver.Start();
        await Task.Delay(TimeSpan.FromSeconds(3));

        // Redis goes away for a while: replicas keep serving (streams of other replicas are followed
        // through the database), say so in the metric, and stay ready.
        var redisDown = driver.Now;
        await cluster.Redis.StopAsync();
        await WaitAsync(async () => (await RedisConnectedAsync(probe, cluster)).All(c => c == false), TimeSpan.FromSeconds(15), "every replica reporting jackcwf_redis_connected 0");
        var readyDuringRedisOutage = await AllReadyAsync(probe, cluster);
        await Task.Delay(TimeSpan.FromSeconds(6));
        var redisStarted = Stopwatch.StartNew();
        await cluster.Redis.StartAsync();
        await WaitAsync(async () => (await RedisConnectedAsync(probe, cluster)).All(c => c == true), TimeSpan.FromSeconds(30), "every replica reconnecting to Redis");
        var redisRecovered = redisStarted.Elapsed;
        var redisUp = driver.Now;
        await Task.Delay(TimeSpan.FromSeconds(3));

        // PostgreSQL restarts: requests fail while it is down (clients retry with the same key),
        // running answers keep their final write pending, and the replicas recover on their own.
        driver.RetryServerErrors(true);
        var pgDown = driver.Now;
        await cluster.Postgres.StopAsync();
        await Task.Delay(TimeSpan.FromSeconds(3));
        var pgStarted = Stopwatch.StartNew();
        await cluster.Postgres.StartAsync();
        // The restart killed this test's own pooled connections too (57P01): start the checks on fresh ones.
        Npgsql.NpgsqlConnection.ClearAllPools();
        await WaitAsync(() => AllReadyAsync(probe, cluster), TimeSpan.FromSeconds(60), "every replica ready again after PostgreSQL restarted");
        var pgRecovered = pgStarted.Elapsed;
        var pgUp = driver.Now;
        var firstChatAfter = await WaitForChatAsync(driver, pgUp, TimeSpan.FromSeconds(60));
        await Task.Delay(TimeSpan.FromSeconds(3));
        await driver.StopAsync();

        var chats = driver.Chats.ToList();
        var problems = await Ledger.CheckAsync(cluster, chats, allowInterrupted: false);
        var failed = driver.Operations.Where(o => o.Failed).ToList();
        var lostWarning = cluster.Replicas.All(r => r.Logs.Contains("Redis backplane connection lost", StringComparison.Ordinal));
        Figures.Report(output, "Redis outage and PostgreSQL restart under load", [
            $"load: 6 clients through the balancer, {driver.Operations.Count} operations, {driver.Requests} HTTP requests",
            .. Figures.Window("Redis down (about 6 s)", driver.Operations, redisDown, redisUp),
            $"Redis: every replica ready during the outage: {readyDuringRedisOutage}; warning logged by every replica: {lostWarning}; all reconnected {redisRecovered.TotalSeconds:F1} s after Redis started",
            .. Figures.Window("PostgreSQL restart (3 s down)", driver.Operations, pgDown, pgUp),
            $"PostgreSQL: all replicas ready {pgRecovered.TotalSeconds:F1} s after it started; first new chat completed {firstChatAfter.TotalSeconds:F1} s after that",
            $"chats: {chats.Count}, acknowledged: {chats.Count(c => c.Acknowledged)}, completed: {chats.Count(c => c.Completed)}; failed operations: {failed.Count}; database problems: {problems.Count}",
        ]);

        Assert.True(readyDuringRedisOutage, "a replica was not ready while Redis was down");
        Assert.True(lostWarning, "a replica did not log the Redis outage");
        Assert.True(failed.Count == 0, "failed operations:\n" + string.Join("\n", failed.Take(10).Select(f => $"{f.Kind}: {f.Error}")) + "\n" + cluster.Logs(30));
        Assert.True(problems.Count == 0, string.Join("\n", problems.Take(20)));
        Assert.All(chats.Where(c => c.Acknowledged), c => Assert.Equal(c.Sent, c.ReceivedText));
    }

    private static async Task<TimeSpan> WaitForChatAsync(LoadDriver driver, TimeSpan after, TimeSpan timeout)
    {
        var stopwatch = Stopwatch.StartNew();
        while (stopwatch.Elapsed < timeout)
        {
            if (driver.Operations.Any(o => o.Kind == "chat" && o.Start >= after && !o.Failed))
            {
                return driver.Now - after;
            }
            await Task.Delay(100);
        }
        throw new TimeoutException("no chat completed after PostgreSQL came back");
    }

    private static async Task<bool> AllReadyAsync(HttpClient http, HaCluster cluster)
    {
        foreach (var replica in cluster.Replicas)
        {
            try
            {
                using var response = await http.GetAsync(new Uri(replica.BaseUrl, "health/ready"));
                if (response.StatusCode != HttpStatusCode.OK)
                {
                    return false;
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>Each replica's <c>jackcwf_redis_connected</c>: true, false, or null when the scrape failed.</summary>
    private static async Task<List<bool?>> RedisConnectedAsync(HttpClient http, HaCluster cluster)
    {
        var states = new List<bool?>();
        foreach (var replica in cluster.Replicas)
        {
            try
            {
                var metrics = await http.GetStringAsync(new Uri(replica.BaseUrl, "metrics"));
                var line = metrics.Split('\n').FirstOrDefault(l => l.StartsWith("jackcwf_redis_connected{", StringComparison.Ordinal)) ?? "";
                states.Add(line.TrimEnd().EndsWith(" 1", StringComparison.Ordinal));
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                states.Add(null);
            }
        }
        return states;
    }

    private static async Task WaitAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var stopwatch = Stopwatch.StartNew();
        while (!await condition())
        {
            if (stopwatch.Elapsed > timeout)
            {
                throw new TimeoutException($"waited {timeout.TotalSeconds:F0} s for {what}");
            }
            await Task.Delay(200);
        }
    }
}
