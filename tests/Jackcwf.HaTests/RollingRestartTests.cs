using System.Diagnostics;

namespace Jackcwf.HaTests;

public sealed class RollingRestartTests(HaFixture fixture, ITestOutputHelper output)
{
    [Fact]
    public async Task Rolling_restart_of_every_replica_under_load_fails_no_request_and_loses_no_message()
    {
        await fixture.EnsureWholeAsync();
        var cluster = fixture.Cluster;
        await using var driver = await LoadDriver.CreateAsync(cluster, workers: 6, words: 30);
        driver.Start();
        await Task.Delay(TimeSpan.FromSeconds(4));

        var eventStart = driver.Now;
        var stopwatch = Stopwatch.StartNew();
        var restarts = await cluster.RollingRestartAsync(output.WriteLine);
        var restartTook = stopwatch.Elapsed;
        var eventEnd = driver.Now;
        await Task.Delay(TimeSpan.FromSeconds(4));
        await driver.StopAsync();

        var chats = driver.Chats.ToList();
        var problems = await Ledger.CheckAsync(cluster, chats, allowInterrupted: false);
        var failed = driver.Operations.Where(o => o.Failed).ToList();
        Figures.Report(output, "Rolling restart of 3 replicas under load", [
            $"load: 6 clients through the balancer, {driver.Operations.Count} operations, {driver.Requests} HTTP requests (retries included)",
            $"rolling restart of 3 replicas took {restartTook.TotalSeconds:F1} s ({string.Join(", ", restarts.Select(r => $"{r.TotalSeconds:F1} s"))})",
            .. Figures.Window("during the restart", driver.Operations, eventStart, eventEnd),
            $"chats: {chats.Count}, completed to the exact text: {chats.Count(c => c.Completed && c.ReceivedText == c.Sent)}, needed a retry or resume: {chats.Count(c => c.Attempts > 1)}",
            $"failed operations: {failed.Count}; database problems (lost, duplicated, wrong text, still streaming): {problems.Count}",
        ]);

        Assert.True(failed.Count == 0, "failed operations:\n" + string.Join("\n", failed.Take(10).Select(f => $"{f.Kind}: {f.Error}")) + "\n" + cluster.Logs(30));
        Assert.All(chats, c => Assert.Equal(c.Sent, c.ReceivedText));
        Assert.True(problems.Count == 0, string.Join("\n", problems.Take(20)));
        Assert.True(chats.Count >= 20, $"only {chats.Count} chats ran; the load was too light to show anything");
    }
}
