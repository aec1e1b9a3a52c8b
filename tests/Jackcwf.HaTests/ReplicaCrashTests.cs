using System.Diagnostics;

namespace Jackcwf.HaTests;

public sealed class ReplicaCrashTests(HaFixture fixture, ITestOutputHelper output)
{
    private const int LeaseSeconds = HaFixture.LeaseSeconds;

    [Fact]
    public async Task Killed_replica_streams_fail_over_and_its_answers_become_interrupted_within_the_lease_bound()
    {
        await fixture.EnsureWholeAsync();
        var cluster = fixture.Cluster;
        await using var driver = await LoadDriver.CreateAsync(cluster, workers: 6, words: 40);
        driver.Start();
        await Task.Delay(TimeSpan.FromSeconds(4));

        var victim = cluster.Replicas[1];
        var victimPid = victim.Pid;
        // Kill while the victim is in the middle of an answer that already has checkpointed text, and
        // in its first half (a 40-word echo is about 230 characters): an answer seen near its end can
        // finish in the moment between this read and the kill, and then rightly ends complete.
        StoredMessage? witness = null;
        for (var wait = Stopwatch.StartNew(); witness is null && wait.Elapsed < TimeSpan.FromSeconds(30); await Task.Delay(100))
        {
            witness = (await OwnedByAsync(cluster, victimPid)).FirstOrDefault(m => m.Status == "streaming" && m.Content.Length is > 0 and < 110);
        }
        Assert.NotNull(witness);
        var killedAt = DateTime.UtcNow;
        var eventStart = driver.Now;
        var stopwatch = Stopwatch.StartNew();
        victim.Kill();
        output.WriteLine($"killed replica 2 (pid {victimPid}) with SIGKILL");

        // The lease bound: the lease plus one sweep period (a third of the lease), plus scheduling slack.
        var bound = TimeSpan.FromSeconds(LeaseSeconds + LeaseSeconds / 3.0 + 3);
        var owned = new List<StoredMessage>();
        while (true)
        {
            owned = await OwnedByAsync(cluster, victimPid);
            if (owned.All(m => m.Status != "streaming") || stopwatch.Elapsed > bound + TimeSpan.FromSeconds(20))
            {
                break;
            }
            await Task.Delay(250);
        }
        var settled = stopwatch.Elapsed;
        var eventEnd = driver.Now;
        await Task.Delay(TimeSpan.FromSeconds(3));
        await driver.StopAsync();

        owned = await OwnedByAsync(cluster, victimPid);
        var interrupted = owned.Where(m => m.Status == "interrupted").ToList();
        // Their streams in Redis: the sweeper that settled them keeps them as long as a finished answer's (15 s), not
        // the running time to live (5 minutes) the dead writer gave them. Gone (-2) is as good.
        var streamTtls = await StreamTimesToLiveAsync(cluster, interrupted.Select(m => m.Id).ToList());
        for (var wait = Stopwatch.StartNew(); streamTtls.Any(t => t.Value > 15_000 || t.Value == -1) && wait.Elapsed < TimeSpan.FromSeconds(15); await Task.Delay(500))
        {
            streamTtls = await StreamTimesToLiveAsync(cluster, interrupted.Select(m => m.Id).ToList());
        }
        var lastSettled = interrupted.Count == 0 ? TimeSpan.Zero : interrupted.Max(m => m.CompletedAt!.Value) - killedAt;
        var chats = driver.Chats.ToList();
        var problems = await Ledger.CheckAsync(cluster, chats, allowInterrupted: true);
        var failed = driver.Operations.Where(o => o.Failed).ToList();
        var clientsInterrupted = chats.Where(c => c.FinalStatus == "interrupted").ToList();
        Figures.Report(output, "kill -9 of a replica mid-stream", [
            $"load: 6 clients through the balancer, {driver.Operations.Count} operations, {driver.Requests} HTTP requests; lease {LeaseSeconds} s",
            $"answer {witness.Id} had {witness.Content.Length} characters checkpointed before the kill; kept after: {owned.Single(m => m.Id == witness.Id).Content.Length}",
            $"killed replica owned {owned.Count} answers: {interrupted.Count} interrupted, {owned.Count(m => m.Status == "complete")} complete, {owned.Count(m => m.Status == "streaming")} still streaming",
            $"time from kill to the last answer marked interrupted: {lastSettled.TotalSeconds:F1} s (bound {bound.TotalSeconds:F0} s); nothing streaming after {settled.TotalSeconds:F1} s",
            .. Figures.Window("from the kill until settled", driver.Operations, eventStart, eventEnd),
            $"clients that resumed on another replica and were told \"interrupted\": {clientsInterrupted.Count}; other chats completed: {chats.Count(c => c.Completed)}",
            $"their streams in Redis: {streamTtls.Count(t => t.Value != -2)} still there, longest time to live {(streamTtls.Count == 0 ? 0 : streamTtls.Max(t => t.Value)) / 1000.0:F1} s; {streamTtls.Count(t => t.Value == -2)} gone",
            $"failed operations: {failed.Count}; database problems: {problems.Count}",
        ]);

        Assert.NotEmpty(interrupted);
        Assert.DoesNotContain(owned, m => m.Status == "streaming");
        Assert.True(lastSettled <= bound, $"the last answer became interrupted {lastSettled.TotalSeconds:F1} s after the kill (bound {bound.TotalSeconds:F0} s)");
        // The checkpointed text is kept: the answer seen mid-stream before the kill still holds (at least) that text,
        // and every interrupted answer holds a prefix of its echo (Ledger checks the prefix).
        var kept = Assert.Single(owned, m => m.Id == witness.Id);
        Assert.Equal("interrupted", kept.Status);
        Assert.StartsWith(witness.Content, kept.Content, StringComparison.Ordinal);
        Assert.True(failed.Count == 0, "failed operations:\n" + string.Join("\n", failed.Take(10).Select(f => $"{f.Kind}: {f.Error}")) + "\n" + cluster.Logs(30));
        Assert.True(problems.Count == 0, string.Join("\n", problems.Take(20)));
        // Clients following an answer of the killed replica got its end on another replica, with the kept text.
        Assert.All(clientsInterrupted, c => Assert.StartsWith(c.FinalContent ?? "", c.Sent, StringComparison.Ordinal));
        Assert.NotEmpty(clientsInterrupted);
        var kept5Minutes = streamTtls.Where(t => t.Value > 15_000 || t.Value == -1).ToList();
        Assert.True(kept5Minutes.Count == 0,
            "streams of interrupted answers still holding a running time to live (ms): " + string.Join(", ", kept5Minutes.Select(t => $"{t.Key}: {t.Value}")));
    }

    /// <summary>PTTL of each answer's event-log stream in Redis: milliseconds, -2 when it is gone, -1 without a time to live.</summary>
    private static async Task<Dictionary<Guid, long>> StreamTimesToLiveAsync(HaCluster cluster, List<Guid> ids)
    {
        await using var redis = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(cluster.Redis.Configuration);
        var db = redis.GetDatabase();
        var result = new Dictionary<Guid, long>();
        foreach (var id in ids)
        {
            result[id] = (long)await db.ExecuteAsync("PTTL", $"jackcwf:gen:{id:N}");
        }
        return result;
    }

    private static async Task<List<StoredMessage>> OwnedByAsync(HaCluster cluster, int pid)
    {
        await using var connection = await cluster.OpenDatabaseAsync();
        await using var command = new Npgsql.NpgsqlCommand(
            """SELECT "Id", "ConversationId", "ParentMessageId", "Role", "Content", "Status", "OwnerInstance", "CompletedAt" FROM messages WHERE "OwnerInstance" LIKE @owner""",
            connection);
        command.Parameters.AddWithValue("owner", $"%:{pid}:%");
        var list = new List<StoredMessage>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            list.Add(new(reader.GetGuid(0), reader.GetGuid(1), reader.IsDBNull(2) ? null : reader.GetGuid(2), reader.GetString(3),
                reader.GetString(4), reader.GetString(5), reader.IsDBNull(6) ? null : reader.GetString(6), reader.IsDBNull(7) ? null : reader.GetDateTime(7)));
        }
        return list;
    }
}
