using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Jackcwf.HaTests;
using Jackcwf.Testing;
using Npgsql;

namespace Jackcwf.DataHaTests;

/// <summary>
/// The disaster drill on the Patroni cluster (pgBackRest, one repository for the cluster): write
/// through the service, back up, write, note T, write, switch over (so the newest WAL is archived
/// by a second leader), write, drop a table, restore to T with <c>deploy-ha.sh --restore --to</c>.
/// Everything up to T is back byte for byte and nothing after it; the cluster has a leader and two
/// streaming standbys again; archiving works on the restored leader; the service signs in and chats.
/// The figures it prints are those of the HA guide.
/// </summary>
public sealed partial class PostgresRestoreTests(DataTierFixture fixture, ITestOutputHelper output)
{
    [Fact]
    public async Task Restoring_the_cluster_to_a_moment_after_a_switchover_and_a_dropped_table_brings_back_everything_up_to_it_and_nothing_after()
    {
        var cluster = fixture.Cluster;
        await cluster.EnsureWholeAsync();
        var (client, email, password) = await HaClient.RegisterAsync(cluster.CreateClient());

        var beforeT = await WriteAsync(client, 3, "before the backup");
        var backup = await TimedAsync(cluster, "--backup");
        Assert.Contains("backup: done", backup.Output, StringComparison.Ordinal);
        // pgBackRest keeps a backup's stop time in whole seconds and restores to a time only from a
        // backup that stopped strictly before it: T is noted in a later second than the backup's end.
        var backupEnded = await ScalarAsync<DateTime>(cluster, "SELECT date_trunc('second', clock_timestamp())");
        while (await ScalarAsync<DateTime>(cluster, "SELECT date_trunc('second', clock_timestamp())") <= backupEnded)
        {
            await Task.Delay(50);
        }
        beforeT.AddRange(await WriteAsync(client, 3, "after the backup"));
        var t = await ScalarAsync<DateTime>(cluster, "SELECT clock_timestamp()");
        var atT = await MessagesDigestAsync(cluster);

        var afterT = await WriteAsync(client, 2, "after T");
        var (before, _, _) = await cluster.HealthAsync();
        var firstLeader = before.Single(n => n is { Kind: "postgresql", Role: "primary" });
        var switchover = await cluster.ScriptAsync("deploy-ha.sh", "--platform", "local", "--switchover");
        Assert.Contains("is the primary now", switchover, StringComparison.Ordinal);
        afterT.AddRange(await WriteAsync(client, 2, "after the switchover"));
        var (after, _, _) = await cluster.HealthAsync();
        var secondLeader = after.Single(n => n is { Kind: "postgresql", Role: "primary" });
        Assert.NotEqual(firstLeader.Port, secondLeader.Port);
        // The new leader archives: check switches its WAL segment and waits until the repository has it.
        var verifiedAfterSwitchover = await cluster.ScriptAsync("deploy-ha.sh", "--platform", "local", "--verify-backups");
        Assert.Contains("WAL archiving works", verifiedAfterSwitchover, StringComparison.Ordinal);

        await ScalarAsync<int>(cluster, "DROP TABLE messages CASCADE");

        var target = t.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss.ffffff", CultureInfo.InvariantCulture) + "+00";
        var restore = await TimedAsync(cluster, "--restore", "--to", target);

        var restored = await MessagesDigestAsync(cluster);
        Assert.Equal(atT, restored);
        Assert.Equal(beforeT.Count, await CountConversationsAsync(cluster, beforeT));
        Assert.Equal(0, await CountConversationsAsync(cluster, afterT));

        // A leader and two standbys streaming from it, as health-check.sh reports them.
        var nodes = await cluster.WaitForHealthAsync(
            n => n.Count(x => x is { Kind: "postgresql", Role: "primary" }) == 1 && n.Count(x => x is { Kind: "postgresql", Role: "standby" }) == 2,
            TimeSpan.FromSeconds(120), "a leader and two streaming standbys after the restore");
        var verified = await cluster.ScriptAsync("deploy-ha.sh", "--platform", "local", "--verify-backups");
        Assert.Contains("WAL archiving works", verified, StringComparison.Ordinal);

        // The service on the restored database: the old password signs in, a chat is answered and stored.
        using var http = cluster.CreateClient();
        var again = new HaClient(http, await HaClient.LoginAsync(http, email, password));
        var conversation = await again.CreateConversationAsync();
        var chat = await again.ChatJsonAsync(conversation, "after the restore");
        Assert.True(chat.Completed, $"the chat after the restore ended {chat.FinalType}: {chat.Error}");
        Assert.Equal(1, await CountConversationsAsync(cluster, [conversation]));

        var files = FilesRestored().Match(restore.Output);
        var size = await ScalarAsync<long>(cluster, "SELECT sum(pg_database_size(datname))::bigint FROM pg_database");
        Figures.Report(output, "restore of the Patroni cluster to a moment (pgBackRest)", [
            $"backup (deploy-ha.sh --backup, from the leader 127.0.0.1:{firstLeader.Port}): {backup.Duration.TotalSeconds:F0} s; cluster {size / 1048576.0:F1} MiB",
            $"switchover to 127.0.0.1:{secondLeader.Port} after T; its WAL archived (pgbackrest check passed)",
            $"restore to T (deploy-ha.sh --restore --to): {restore.Duration.TotalSeconds:F0} s end to end, of which files restored in {(files.Success ? files.Groups[1].Value : "?")} s; "
                + $"{string.Join(", ", RestoreSteps().Matches(restore.Output).Select(m => m.Value))}",
            $"at T: {atT}; after the restore: {restored}; conversations before T: {beforeT.Count} back, after T: {afterT.Count} absent",
            $"cluster after the restore: {string.Join(", ", nodes.Where(n => n.Kind == "postgresql").Select(n => $"{n.Role} 127.0.0.1:{n.Port}"))}; sign-in and chat answered",
        ]);
    }

    [GeneratedRegex(@"files restored in (\d+)s")]
    private static partial Regex FilesRestored();

    [GeneratedRegex(@"(restored, recovered and the leader in \d+s|\d members running, leader pg\d \(\d+s\)|complete in \d+s \(RTO\))")]
    private static partial Regex RestoreSteps();

    private static async Task<(string Output, TimeSpan Duration)> TimedAsync(DataTierCluster cluster, params string[] action)
    {
        var stopwatch = Stopwatch.StartNew();
        var result = await cluster.ScriptAsync("deploy-ha.sh", ["--platform", "local", .. action]);
        return (result, stopwatch.Elapsed);
    }

    /// <summary>Creates <paramref name="count"/> conversations with one answered message each; returns their ids.</summary>
    private static async Task<List<Guid>> WriteAsync(HaClient client, int count, string label)
    {
        var ids = new List<Guid>();
        for (var i = 0; i < count; i++)
        {
            var id = await client.CreateConversationAsync();
            var chat = await client.ChatJsonAsync(id, $"{label} {i}: naïve ✓ {Guid.NewGuid():N}");
            Assert.True(chat.Completed, $"chat '{label} {i}' ended {chat.FinalType}: {chat.Error}");
            ids.Add(id);
        }
        return ids;
    }

    private static async Task<int> CountConversationsAsync(DataTierCluster cluster, List<Guid> ids)
    {
        await using var connection = await cluster.OpenDatabaseAsync();
        await using var command = new NpgsqlCommand("SELECT count(*) FROM conversations WHERE \"Id\" = ANY(@ids)", connection);
        command.Parameters.AddWithValue("ids", ids.ToArray());
        return (int)(long)(await command.ExecuteScalarAsync())!;
    }

    private static async Task<string> MessagesDigestAsync(DataTierCluster cluster)
    {
        await using var connection = await cluster.OpenDatabaseAsync();
        return await MessagesDigest.ComputeAsync(connection);
    }

    private static async Task<T> ScalarAsync<T>(DataTierCluster cluster, string sql)
    {
        await using var connection = await cluster.OpenDatabaseAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        var value = await command.ExecuteScalarAsync();
        return value is null or DBNull ? default! : (T)value;
    }
}
