using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using Jackcwf.HaTests;
using Jackcwf.Testing;

namespace Jackcwf.DataHaTests;

/// <summary>
/// Redis Sentinel under SSE load through the balancer: kill -9 of the Redis master. The sentinels
/// promote a replica; every replica's backplane must follow on its own (no restart) within 15 s,
/// while streams degrade as in any Redis outage (followed through the database) and end exact, and
/// every replica keeps answering: the balancer takes none out of rotation (the Redis client follows
/// the failover with blocking calls on thread-pool threads, which once starved a replica until its
/// health probe timed out).
/// </summary>
public sealed class SentinelFailoverTests(DataTierFixture fixture, ITestOutputHelper output)
{
    private static readonly TimeSpan BackplaneBound = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task Killing_the_Redis_master_fails_no_request_and_every_replica_writes_to_the_new_master_within_15_seconds()
    {
        var cluster = fixture.Cluster;
        await cluster.EnsureWholeAsync();
        var replicaPids = cluster.ReplicaPids();
        var (nodes, _, _) = await cluster.HealthAsync();
        var master = nodes.Single(n => n is { Kind: "redis", Role: "master" });

        // One signed-in probe client per replica, straight to it (not through the balancer).
        var probes = new List<(HaClient Client, Guid Conversation)>();
        foreach (var url in cluster.ReplicaUrls)
        {
            var (client, _, _) = await HaClient.RegisterAsync(cluster.CreateClient(url));
            probes.Add((client, await client.CreateConversationAsync()));
        }

        await using var driver = await LoadDriver.CreateAsync(cluster, workers: 6, words: 30);
        driver.Start();
        await Task.Delay(TimeSpan.FromSeconds(4));

        // The balancer's view of the replicas, read every 250 ms from the kill until the end of the run: a replica
        // whose health probe fails twice (1 s timeout each) is taken out of rotation.
        using var balancer = cluster.CreateClient();
        var allInRotation = Stopwatch.StartNew();
        while (await balancer.GetFromJsonAsync<JsonElement>("lb/health") is var before && before.GetProperty("healthyDestinations").GetInt32() < cluster.ReplicaUrls.Count)
        {
            Assert.True(allInRotation.Elapsed < TimeSpan.FromSeconds(60), $"the balancer had not every replica in rotation before the kill: {before}");
            await Task.Delay(250);
        }
        using var watching = new CancellationTokenSource();
        var outOfRotation = new ConcurrentQueue<string>();
        var watchStarted = Stopwatch.StartNew();
        var watcher = Task.Run(async () =>
        {
            while (!watching.IsCancellationRequested)
            {
                try
                {
                    using var health = JsonDocument.Parse(await balancer.GetStringAsync("lb/health", watching.Token));
                    foreach (var d in health.RootElement.GetProperty("destinations").EnumerateArray().Where(d => !d.GetProperty("healthy").GetBoolean()))
                    {
                        outOfRotation.Enqueue($"{watchStarted.Elapsed.TotalSeconds:F1} s: {d.GetProperty("id").GetString()} (active {d.GetProperty("active").GetString()}, passive {d.GetProperty("passive").GetString()})");
                    }
                    await Task.Delay(250, watching.Token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        });

        var killedAt = driver.Now;
        var stopwatch = Stopwatch.StartNew();
        Signals.Send(master.Pid, Signals.SigKill);
        output.WriteLine($"kill -9 of the Redis master 127.0.0.1:{master.Port} (pid {master.Pid})");

        // The sentinels promote a replica…
        DataNode? newMaster = null;
        while (newMaster is null && stopwatch.Elapsed < TimeSpan.FromSeconds(60))
        {
            var (now, _, _) = await cluster.HealthAsync();
            newMaster = now.FirstOrDefault(n => n is { Kind: "redis", Role: "master" } && n.Port != master.Port);
            if (newMaster is null)
            {
                await Task.Delay(250);
            }
        }
        Assert.True(newMaster is not null, "the sentinels promoted no replica within 60 s");
        var promoted = stopwatch.Elapsed;

        // …and each replica's backplane writes its new streams there: a chat answered on the replica
        // has its stream key on the new master (written 40 ms after the answer's start, or by its final
        // event when it ends sooner, so it is looked for once the answer has ended).
        // Each replica is probed on its own, at once: probed one after another, a probe answered slowly by one replica
        // (a request waiting out a Redis timeout during the failover) delayed the others' readings by as much.
        var newMasterPort = newMaster.Port;
        var onNewMaster = await Task.WhenAll(probes.Select(async probe =>
        {
            while (stopwatch.Elapsed < TimeSpan.FromSeconds(60))
            {
                var id = await ChatAsync(probe.Client, probe.Conversation);
                if (id is { } messageId && await cluster.RedisCliAsync(newMasterPort, "EXISTS", $"jackcwf:gen:{messageId:N}") == "1")
                {
                    return (TimeSpan?)stopwatch.Elapsed;
                }
                await Task.Delay(250);
            }
            return null;
        }));
        var backplaneBack = onNewMaster.Max() ?? TimeSpan.MaxValue;
        var recoveredAt = driver.Now;
        await Task.Delay(TimeSpan.FromSeconds(4));
        await driver.StopAsync();
        await watching.CancelAsync();
        await watcher;

        var chats = driver.Chats.ToList();
        var problems = await Ledger.CheckAsync(cluster, chats, allowInterrupted: false);
        var failed = driver.Operations.Where(o => o.Failed).ToList();
        var failedRequests = driver.FailedAttempts;
        Figures.Report(output, "kill -9 of the Redis master (Sentinel) under SSE load", [
            $"load: 6 clients through the balancer, {driver.Operations.Count} operations, {driver.Requests} HTTP requests",
            $"master 127.0.0.1:{master.Port} killed; sentinels announced 127.0.0.1:{newMaster.Port} {promoted.TotalSeconds:F1} s later",
            $"each replica's backplane writing to the new master after: {string.Join(", ", onNewMaster.Select(t => t is null ? "never" : $"{t.Value.TotalSeconds:F1} s"))} (bound {BackplaneBound.TotalSeconds:F0} s)",
            .. Figures.Window("from the kill until every backplane was back", driver.Operations, killedAt, recoveredAt),
            $"chats: {chats.Count}, completed: {chats.Count(c => c.Completed)}, resumed streams: {chats.Count(c => c.Resumes > 0)}; failed requests: {failedRequests.Count}; failed operations: {failed.Count}; database problems: {problems.Count}",
            $"replicas the balancer took out of rotation: {(outOfRotation.IsEmpty ? "none" : string.Join("; ", outOfRotation))}",
        ]);

        Assert.True(backplaneBack <= BackplaneBound, $"the backplane was on the new master after {string.Join(", ", onNewMaster)}\n{cluster.Logs(20)}");
        Assert.True(outOfRotation.IsEmpty, "the balancer took replicas out of rotation (health probes timed out or failed):\n"
            + string.Join("\n", outOfRotation.Take(20)) + "\n" + cluster.Logs(20));
        Assert.True(failedRequests.Count == 0, "failed requests:\n" + string.Join("\n", failedRequests.Take(10).Select(f => $"{f.At.TotalSeconds:F1}s {f.What}")) + "\n" + cluster.Logs(30));
        Assert.True(failed.Count == 0, "failed operations:\n" + string.Join("\n", failed.Take(10).Select(f => $"{f.Kind}: {f.Error}")));
        Assert.True(problems.Count == 0, string.Join("\n", problems.Take(20)));
        Assert.All(chats.Where(c => c.Acknowledged), c => Assert.Equal(c.Sent, c.ReceivedText));
        Assert.Equal(replicaPids, cluster.ReplicaPids());
    }

    /// <summary>
    /// Sends a short message, reads its stream to the end and returns the assistant message id from the stream's
    /// <c>start</c> event (null when refused, or when the stream broke off).
    /// </summary>
    private static async Task<Guid?> ChatAsync(HaClient client, Guid conversation)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"api/conversations/{conversation}/messages")
        {
            Content = JsonContent.Create(new { content = "probe" }),
        };
        request.Headers.Authorization = new("Bearer", client.Token);
        request.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString("N"));
        request.Headers.Accept.Add(new("text/event-stream"));
        try
        {
            using var response = await client.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            if (!response.IsSuccessStatusCode)
            {
                return null;
            }
            Guid? id = null;
            await foreach (var e in response.ReadEventsAsync())
            {
                if (e.Event == "start")
                {
                    id = e.Json.GetProperty("messageId").GetGuid();
                }
                else if (e.Event is "done" or "error")
                {
                    return id;
                }
            }
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
        }
        return null;
    }
}
