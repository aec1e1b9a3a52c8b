using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Jackcwf.Testing;
using Npgsql;

namespace Jackcwf.LoadBalancer.Tests;

/// <summary>
/// The PostgreSQL disaster drill on the local platform (deploy-ha.sh + pgBackRest): write, back up,
/// write, note T, write, drop a table, restore to T; everything up to T is back byte for byte and
/// nothing after it; the backups verify; the service signs in and chats on the restored database.
/// The figures it prints (backup and restore times, database size) are the recovery guide's.
/// </summary>
public sealed partial class PostgresRestoreDrillTests
{
    private const int N = 4;
    private const int M = 4;
    private const int K = 4;
    private static readonly TimeSpan ScriptTimeout = TimeSpan.FromSeconds(600);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static void Log(string line) => TestContext.Current.TestOutputHelper?.WriteLine(line);

    [Fact]
    public async Task RestoreToAMomentAfterADroppedTableBringsBackEverythingUpToItAndNothingAfter()
    {
        Assert.True(Scripts.FindOnPath("pgbackrest") is not null, "pgbackrest is not installed (apt-get install pgbackrest; it is listed in tests/apt-packages.txt).");
        // The postgres user must reach the state folder, so not a private temp folder.
        var haDir = Path.Combine("/tmp", $"jackcwf-drill-{Guid.NewGuid():N}");
        if (!OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(haDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        }
        var lbPort = FreePort.GetReusable();
        var pgPort = FreePort.GetReusable();
        var environment = new Dictionary<string, string?>
        {
            ["HA_DIR"] = haDir,
            ["HA_LB_PORT"] = $"{lbPort}",
            ["HA_BASE_PORT"] = $"{FreePort.GetReusable()}",
            ["HA_PG_PORT"] = $"{pgPort}",
            ["HA_REDIS_PORT"] = $"{FreePort.GetReusable()}",
            ["HA_START_TIMEOUT"] = "300",
            ["JACKCWF_API_DLL"] = Scripts.ApiDll,
            ["JACKCWF_LB_DLL"] = Scripts.LoadBalancerDll,
            ["DATABASE_URL"] = null,
            ["REDIS_URL"] = null,
            ["SHUTDOWN_DRAIN_DELAY_SECONDS"] = "1",
            ["DEMO_CHUNK_DELAY_MS"] = "0",
            ["HEALTH_CHECK_TIMEOUT_MS"] = "10000",
            ["LOG_FORMAT"] = "text",
        };
        var db = new NpgsqlConnectionStringBuilder { Host = "127.0.0.1", Port = pgPort, Username = "postgres", Database = "jackcwf", Pooling = false }.ConnectionString;
        try
        {
            await RunScriptAsync(environment, "--platform", "local", "--replicas", "1");
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{lbPort}/"), Timeout = TimeSpan.FromSeconds(120) };
            var (email, password) = ($"drill-{Guid.NewGuid():N}@example.test", "Passw0rd-drill");
            await SignInAsync(http, email, password, register: true);

            var beforeT = new List<Guid>();
            beforeT.AddRange(await WriteConversationsAsync(http, N, "before the backup"));
            var backup = await RunScriptAsync(environment, "--platform", "local", "--backup");
            // pgBackRest picks the backup for a time target by its stop time, kept in whole seconds,
            // and needs it strictly before the target: a target in the second a backup ended finds
            // no backup ("unable to find backup set with stop time less than ..."). A user picks a
            // moment well after a backup; on a fast machine this drill could reach T within the same
            // second, so T is noted once the database clock is in a later second than the backup's end.
            var backupEnded = await ScalarAsync<DateTime>(db, "SELECT date_trunc('second', clock_timestamp())");
            while (await ScalarAsync<DateTime>(db, "SELECT date_trunc('second', clock_timestamp())") <= backupEnded)
            {
                await Task.Delay(50, Ct);
            }
            beforeT.AddRange(await WriteConversationsAsync(http, M, "after the backup"));
            var t = await ScalarAsync<DateTime>(db, "SELECT clock_timestamp()");
            var atT = await MessagesDigestAsync(db);
            var afterT = await WriteConversationsAsync(http, K, "after T");
            await ScalarAsync<int>(db, "DROP TABLE messages CASCADE");

            var target = t.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss.ffffff", CultureInfo.InvariantCulture) + "+00";
            var restore = await RunScriptAsync(environment, "--platform", "local", "--restore", "--to", target);

            var restored = await MessagesDigestAsync(db);
            Assert.Equal(atT, restored);
            Assert.Equal(0L, await ScalarAsync<long>(db, $"SELECT count(*) FROM conversations WHERE \"Id\" = ANY(@ids)", afterT.ToArray()));
            Assert.Equal((long)beforeT.Count, await ScalarAsync<long>(db, $"SELECT count(*) FROM conversations WHERE \"Id\" = ANY(@ids)", beforeT.ToArray()));

            await RunScriptAsync(environment, "--platform", "local", "--verify-backups");
            var list = await RunScriptAsync(environment, "--platform", "local", "--backups");
            Assert.Contains("full backup:", list.Output, StringComparison.Ordinal);

            // The service on the restored database: the old password signs in, chat works.
            using var again = new HttpClient { BaseAddress = http.BaseAddress, Timeout = http.Timeout };
            await SignInAsync(again, email, password, register: false);
            await WriteConversationsAsync(again, 1, "after the restore");

            var size = await ScalarAsync<long>(db, "SELECT pg_database_size('jackcwf')");
            // pgBackRest restores the whole cluster (every database), so the rate is per cluster byte.
            var cluster = (long)await ScalarAsync<decimal>(db, "SELECT sum(pg_database_size(datname)) FROM pg_database");
            var files = double.Parse(FilesRestored().Match(restore.Output).Groups[1].Value, CultureInfo.InvariantCulture);
            var figures = $"RESTORE DRILL: database {size / 1048576.0:0.0} MiB ({restored}); backup {backup.Duration.TotalSeconds:0} s; "
                + $"restore to T {restore.Duration.TotalSeconds:0} s in total, of which {files:0} s restoring files "
                + $"for a {cluster / 1048576.0:0.0} MiB cluster (~{files / (cluster / 1073741824.0):0} s/GiB for files alone); RPO at T: 0 messages lost";
            Log(figures);
            TestContext.Current.SendDiagnosticMessage(figures);
            // Also kept next to the test binary, since test output is shown only for failures.
            await File.WriteAllTextAsync(Path.Combine(AppContext.BaseDirectory, "restore-drill-figures.txt"), $"{DateTime.UtcNow:u} {figures}\n{restore.Output}", CancellationToken.None);
        }
        finally
        {
            await Scripts.RunAsync(Scripts.DeployHa, ["--platform", "local", "--down", "--purge"], environment, ScriptTimeout);
            if (Directory.Exists(haDir))
            {
                Directory.Delete(haDir, recursive: true);
            }
        }
    }

    [GeneratedRegex(@"files restored in (\d+)s")]
    private static partial Regex FilesRestored();

    private static async Task<Scripts.Result> RunScriptAsync(Dictionary<string, string?> environment, params string[] args)
    {
        var result = await Scripts.RunAsync(Scripts.DeployHa, args, environment, ScriptTimeout);
        Log($"deploy-ha.sh {string.Join(' ', args)}: exit {result.ExitCode} in {result.Duration.TotalSeconds:0} s");
        Assert.True(result.ExitCode == 0, $"deploy-ha.sh {string.Join(' ', args)} failed:\n{result.Output}");
        return result;
    }

    private static async Task SignInAsync(HttpClient http, string email, string password, bool register)
    {
        if (register)
        {
            using var r = await http.PostAsJsonAsync("api/auth/register", new { email, password }, Ct);
            Assert.True(r.IsSuccessStatusCode, $"register answered {(int)r.StatusCode}");
        }
        using var login = await http.PostAsJsonAsync("api/auth/login", new { email, password }, Ct);
        Assert.Equal(HttpStatusCode.OK, login.StatusCode);
        var token = (await login.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("accessToken").GetString();
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
    }

    /// <summary>Creates <paramref name="count"/> conversations with one exchange each; returns their ids once acknowledged.</summary>
    private static async Task<List<Guid>> WriteConversationsAsync(HttpClient http, int count, string label)
    {
        var ids = new List<Guid>();
        for (var i = 0; i < count; i++)
        {
            using var created = await http.PostAsJsonAsync("api/conversations", new { title = $"{label} {i}" }, Ct);
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            var id = (await created.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetGuid();
            using var chat = await http.PostAsJsonAsync($"api/conversations/{id}/messages", new { content = $"{label} {i}: naïve ✓ {Guid.NewGuid():N}" }, Ct);
            Assert.True(chat.StatusCode == HttpStatusCode.OK, $"chat answered {(int)chat.StatusCode}: {await chat.Content.ReadAsStringAsync(Ct)}");
            ids.Add(id);
        }
        return ids;
    }

    private static async Task<string> MessagesDigestAsync(string connectionString)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(Ct);
        return await MessagesDigest.ComputeAsync(connection, Ct);
    }

    private static async Task<T> ScalarAsync<T>(string connectionString, string sql, Guid[]? ids = null)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand(sql, connection);
        if (ids is not null)
        {
            command.Parameters.AddWithValue("ids", ids);
        }
        var value = await command.ExecuteScalarAsync(Ct);
        return value is null or DBNull ? default! : (T)value;
    }
}
