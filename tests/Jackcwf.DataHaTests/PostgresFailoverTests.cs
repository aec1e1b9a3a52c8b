using System.Diagnostics;
using Jackcwf.HaTests;

namespace Jackcwf.DataHaTests;

/// <summary>
/// The Patroni cluster under chat load through the balancer (six clients: SSE and JSON messages with
/// Idempotency-Keys, resumes, reads): the primary's host dies (kill -9 of its Patroni and PostgreSQL),
/// then, separately, a planned switchover. Every acknowledged message is read back from the new primary.
/// </summary>
public sealed class PostgresFailoverTests(DataTierFixture fixture, ITestOutputHelper output)
{
    private static readonly TimeSpan MaxWriteUnavailability = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Killing_the_primary_loses_no_acknowledged_message_and_writes_resume_within_30_seconds_without_a_restart()
    {
        var cluster = fixture.Cluster;
        await cluster.EnsureWholeAsync();
        var replicaPids = cluster.ReplicaPids();
        var (nodes, _, _) = await cluster.HealthAsync();
        var primary = nodes.Single(n => n is { Kind: "postgresql", Role: "primary" });

        // The documented client contract: a failed send is repeated with the same Idempotency-Key.
        await using var driver = await LoadDriver.CreateAsync(cluster, workers: 6, words: 30, retryServerErrors: true, jsonChats: true);
        driver.Start();
        await Task.Delay(TimeSpan.FromSeconds(4));

        var killedAt = driver.Now;
        var stopwatch = Stopwatch.StartNew();
        DataTierCluster.KillPostgresMember(primary);
        output.WriteLine($"kill -9 of the primary on port {primary.Port}: PostgreSQL pid {primary.Pid}, Patroni pid {primary.PatroniPid}");

        var after = await cluster.WaitForPrimaryAsync(n => n.Port != primary.Port, TimeSpan.FromSeconds(60));
        var promoted = stopwatch.Elapsed;
        var newPrimary = after.Single(n => n is { Kind: "postgresql", Role: "primary" });
        var firstWrite = await WaitForAcknowledgedChatAsync(driver, killedAt, TimeSpan.FromSeconds(60));
        var recoveredAt = driver.Now;
        // Keep the load on: any broken connection left in a pool would fail a request now.
        await Task.Delay(TimeSpan.FromSeconds(6));
        await driver.StopAsync();

        var chats = driver.Chats.ToList();
        var problems = await Ledger.CheckAsync(cluster, chats, allowInterrupted: false);
        var failed = driver.Operations.Where(o => o.Failed).ToList();
        var writeFailures = driver.FailedAttempts.Where(f => f.At >= killedAt && f.What.StartsWith("POST", StringComparison.Ordinal)).ToList();
        var window = writeFailures.Count == 0 ? TimeSpan.Zero : writeFailures[^1].At - writeFailures[0].At;
        var failedAfterRecovery = driver.FailedAttempts.Where(f => f.At >= recoveredAt).ToList();
        var streaming = await StreamingCountAsync(cluster);
        Figures.Report(output, "kill -9 of the PostgreSQL primary (Patroni) under load", [
            $"load: 6 clients through the balancer (SSE and JSON chats with Idempotency-Keys, resumes, reads), {driver.Operations.Count} operations, {driver.Requests} HTTP requests",
            $"primary 127.0.0.1:{primary.Port} killed; 127.0.0.1:{newPrimary.Port} promoted {promoted.TotalSeconds:F1} s later",
            $"write unavailability (first to last failed write attempt): {window.TotalSeconds:F1} s ({writeFailures.Count} failed attempts, every one repeated with its key); first chat acknowledged {firstWrite.TotalSeconds:F1} s after the kill",
            .. Figures.Window("from the kill until writes succeeded again", driver.Operations, killedAt, recoveredAt),
            $"chats: {chats.Count}, acknowledged: {chats.Count(c => c.Acknowledged)}, completed: {chats.Count(c => c.Completed)}; lost: {problems.Count(p => p.Contains("not in the database", StringComparison.Ordinal))}; database problems: {problems.Count}; still streaming: {streaming}",
            $"failed operations after client retries: {failed.Count}; failed requests after recovery: {failedAfterRecovery.Count}; replicas restarted: {(cluster.ReplicaPids().SequenceEqual(replicaPids) ? "none" : "some")}",
        ]);

        Assert.True(problems.Count == 0, string.Join("\n", problems.Take(20)));
        Assert.Equal(0, streaming);
        Assert.All(chats.Where(c => c.Acknowledged), c => Assert.Equal(c.Sent, c.ReceivedText));
        Assert.True(failed.Count == 0, "failed operations:\n" + string.Join("\n", failed.Take(10).Select(f => $"{f.Kind}: {f.Error}")) + "\n" + cluster.Logs(30));
        Assert.True(window <= MaxWriteUnavailability, $"writes failed for {window.TotalSeconds:F1} s");
        Assert.True(firstWrite <= MaxWriteUnavailability, $"the first chat after the kill was acknowledged {firstWrite.TotalSeconds:F1} s later");
        Assert.True(failedAfterRecovery.Count == 0, "requests failed after recovery:\n" + string.Join("\n", failedAfterRecovery.Take(10).Select(f => f.What)));
        Assert.Equal(replicaPids, cluster.ReplicaPids());
        Assert.All(replicaPids, pid => Assert.True(Jackcwf.Testing.Signals.IsAlive(pid), $"replica pid {pid} is gone"));
    }

    [Fact]
    public async Task A_planned_switchover_fails_no_request_and_loses_no_message()
    {
        var cluster = fixture.Cluster;
        await cluster.EnsureWholeAsync();
        var replicaPids = cluster.ReplicaPids();
        var (nodes, _, _) = await cluster.HealthAsync();
        var primary = nodes.Single(n => n is { Kind: "postgresql", Role: "primary" });

        // No retry of server errors: a 500 is a failed request here.
        await using var driver = await LoadDriver.CreateAsync(cluster, workers: 6, words: 30, jsonChats: true);
        driver.Start();
        await Task.Delay(TimeSpan.FromSeconds(4));

        var startedAt = driver.Now;
        var stopwatch = Stopwatch.StartNew();
        var script = await cluster.ScriptAsync("deploy-ha.sh", "--platform", "local", "--switchover");
        var switched = stopwatch.Elapsed;
        var endedAt = driver.Now;
        var (after, _, _) = await cluster.HealthAsync();
        var newPrimary = after.Single(n => n is { Kind: "postgresql", Role: "primary" });
        await Task.Delay(TimeSpan.FromSeconds(5));
        await driver.StopAsync();

        var chats = driver.Chats.ToList();
        var problems = await Ledger.CheckAsync(cluster, chats, allowInterrupted: false);
        var failed = driver.Operations.Where(o => o.Failed).ToList();
        var failedRequests = driver.FailedAttempts;
        Figures.Report(output, "planned PostgreSQL switchover (patronictl) under load", [
            $"load: 6 clients through the balancer (SSE and JSON chats with Idempotency-Keys, resumes, reads), {driver.Operations.Count} operations, {driver.Requests} HTTP requests",
            $"deploy-ha.sh --switchover: primary 127.0.0.1:{primary.Port} -> 127.0.0.1:{newPrimary.Port}, {switched.TotalSeconds:F1} s including patronictl's own wait",
            .. Figures.Window("during the switchover", driver.Operations, startedAt, endedAt),
            $"failed requests: {failedRequests.Count}; failed operations: {failed.Count}; chats: {chats.Count}, acknowledged: {chats.Count(c => c.Acknowledged)}; database problems: {problems.Count}",
        ]);

        Assert.NotEqual(primary.Port, newPrimary.Port);
        Assert.Contains("is the primary now", script, StringComparison.Ordinal);
        Assert.True(failedRequests.Count == 0, "failed requests:\n" + string.Join("\n", failedRequests.Take(10).Select(f => $"{f.At.TotalSeconds:F1}s {f.What}")) + "\n" + cluster.Logs(30));
        Assert.True(failed.Count == 0, "failed operations:\n" + string.Join("\n", failed.Take(10).Select(f => $"{f.Kind}: {f.Error}")));
        Assert.True(problems.Count == 0, string.Join("\n", problems.Take(20)));
        Assert.All(chats.Where(c => c.Acknowledged), c => Assert.Equal(c.Sent, c.ReceivedText));
        Assert.Equal(replicaPids, cluster.ReplicaPids());
    }

    private static async Task<TimeSpan> WaitForAcknowledgedChatAsync(LoadDriver driver, TimeSpan after, TimeSpan timeout)
    {
        var stopwatch = Stopwatch.StartNew();
        while (stopwatch.Elapsed < timeout)
        {
            // A chat that started after the kill and has been acknowledged: the new primary took a write.
            if (driver.Operations.Any(o => o.Kind == "chat" && o.Start > after && !o.Failed))
            {
                return driver.Operations.Where(o => o.Kind == "chat" && o.Start > after && !o.Failed).Min(o => o.Start + o.Latency) - after;
            }
            await Task.Delay(100);
        }
        throw new TimeoutException("no chat was acknowledged after the primary was killed");
    }

    private static async Task<long> StreamingCountAsync(DataTierCluster cluster)
    {
        await using var connection = await cluster.OpenDatabaseAsync();
        await using var command = new Npgsql.NpgsqlCommand("SELECT count(*) FROM messages WHERE \"Status\" = 'streaming'", connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }
}
