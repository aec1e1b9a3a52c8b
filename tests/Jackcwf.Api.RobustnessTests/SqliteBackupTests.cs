using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using Jackcwf.Api.RobustnessTests.Infrastructure;
using Microsoft.Data.Sqlite;

namespace Jackcwf.Api.RobustnessTests;

/// <summary>The binary's commands for the SQLite database: backup while the service writes, restore, scheduled backups, and the command list.</summary>
public sealed class SqliteBackupTests
{
    private static readonly Dictionary<string, string?> Fast = new() { ["DEMO_CHUNK_DELAY_MS"] = "0", ["BACKUP_INTERVAL_HOURS"] = "0" };

    private static Task<ApiCommandResult> RunAsync(string workingDirectory, params string[] arguments) =>
        ApiProcess.RunCommandAsync(arguments, new ApiProcessOptions
        {
            Port = Ports.Next(),
            WorkingDirectory = workingDirectory,
            Environment = new Dictionary<string, string?> { ["DATABASE_URL"] = null },
        }, TimeSpan.FromSeconds(180));

    [Fact]
    public async Task Help_lists_the_commands_and_an_unknown_command_prints_them_and_exits_2()
    {
        var dir = Directory.CreateTempSubdirectory("jackcwf-cmd-").FullName;
        try
        {
            var help = await RunAsync(dir, "--help");
            Assert.Equal(0, help.ExitCode);
            foreach (var command in new[] { "migrate", "backup --to FILE", "restore --from FILE", "migrate-data --from DATABASE_URL --to DATABASE_URL" })
            {
                Assert.Contains(command, help.Output, StringComparison.Ordinal);
            }
            var unknown = await RunAsync(dir, "serve-please");
            Assert.Equal(2, unknown.ExitCode);
            Assert.Contains("Unknown command \"serve-please\"", unknown.Output, StringComparison.Ordinal);
            Assert.Contains("restore --from FILE", unknown.Output, StringComparison.Ordinal);
            // It did not start a server or create a database.
            Assert.False(File.Exists(Path.Combine(dir, "data", "jackcwf.db")));

            var missing = await RunAsync(dir, "backup");
            Assert.Equal(2, missing.ExitCode);
            Assert.Contains("--to is required", missing.Output, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Online_backup_while_messages_are_written_holds_every_acknowledged_message_and_restores()
    {
        var dir = Directory.CreateTempSubdirectory("jackcwf-backup-").FullName;
        var backupFile = Path.Combine(dir, "backups", "online.db");
        try
        {
            string email, password;
            Guid conversation;
            var acknowledged = new ConcurrentDictionary<Guid, string>();
            HashSet<Guid> beforeBackup;
            await using (var api = await Service.StartAsync(Fast, workingDirectory: dir))
            {
                using var user = await TestUser.SignUpAsync(api);
                (email, password) = (user.Email, user.Password);
                conversation = await user.CreateConversationAsync("backup drill");

                using var stop = new CancellationTokenSource();
                var writer = Task.Run(async () =>
                {
                    for (var i = 0; !stop.IsCancellationRequested; i++)
                    {
                        var content = $"message {i} — ünïcödé ✓ {Guid.NewGuid():N}";
                        var (userMessage, _) = await user.ChatAsync(conversation, content);
                        acknowledged[userMessage] = content;
                    }
                });
                while (acknowledged.Count < 15 && !writer.IsCompleted)
                {
                    await Task.Delay(50, TestContext.Current.CancellationToken);
                }
                beforeBackup = [.. acknowledged.Keys];
                var countAtStart = acknowledged.Count;
                var backup = await RunAsync(dir, "backup", "--to", backupFile);
                // Writes went on during the backup.
                while (acknowledged.Count < countAtStart + 5 && !writer.IsCompleted)
                {
                    await Task.Delay(50, TestContext.Current.CancellationToken);
                }
                await stop.CancelAsync();
                await writer;
                Assert.True(backup.ExitCode == 0, $"backup exited {backup.ExitCode}:\n{backup.Output}");
                Assert.Contains("integrity_check ok", backup.Output, StringComparison.Ordinal);

                // The service holds the database: restore refuses and changes nothing.
                var refused = await RunAsync(dir, "restore", "--from", backupFile);
                Assert.Equal(1, refused.ExitCode);
                Assert.Contains("The service is running", refused.Output, StringComparison.Ordinal);
                Assert.Equal(acknowledged.Count, (await user.GetConversationAsync(conversation)).GetProperty("messages").GetArrayLength() / 2);
            }

            var inBackup = ReadUserMessages(backupFile);
            Assert.Equal(["ok"], Pragma(backupFile, "integrity_check"));
            foreach (var id in beforeBackup)
            {
                Assert.True(inBackup.TryGetValue(id, out var content), $"message {id}, acknowledged before the backup started, is missing from it");
                Assert.Equal(acknowledged[id], content);
            }
            Assert.True(inBackup.Count < acknowledged.Count, "messages written after the backup must not be in it (the test wrote some)");
            TestContext.Current.SendDiagnosticMessage($"SQLite online backup: {inBackup.Count} of {acknowledged.Count} user messages in the copy, {beforeBackup.Count} acknowledged before it started");

            // A file that is not an intact database is refused before anything is replaced.
            var junk = Path.Combine(dir, "junk.db");
            await File.WriteAllTextAsync(junk, "not a database", TestContext.Current.CancellationToken);
            var bad = await RunAsync(dir, "restore", "--from", junk);
            Assert.Equal(1, bad.ExitCode);
            Assert.Contains("Nothing was changed", bad.Output, StringComparison.Ordinal);

            var restore = await RunAsync(dir, "restore", "--from", backupFile);
            Assert.True(restore.ExitCode == 0, $"restore exited {restore.ExitCode}:\n{restore.Output}");
            Assert.Contains("kept at", restore.Output, StringComparison.Ordinal);

            await using (var api = await Service.StartAsync(Fast, workingDirectory: dir))
            {
                using var client = api.CreateClient();
                using var login = await client.PostAsJsonAsync("api/auth/login", new { email, password }, TestContext.Current.CancellationToken);
                Assert.Equal(HttpStatusCode.OK, login.StatusCode);
                var token = (await login.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>(TestContext.Current.CancellationToken)).GetProperty("accessToken").GetString();
                client.DefaultRequestHeaders.Authorization = new("Bearer", token);
                var detail = await client.GetFromJsonAsync<System.Text.Json.JsonElement>($"api/conversations/{conversation}", TestContext.Current.CancellationToken);
                var read = detail.GetProperty("messages").EnumerateArray()
                    .Where(m => m.GetProperty("role").GetString() == "user")
                    .ToDictionary(m => m.GetProperty("id").GetGuid(), m => m.GetProperty("content").GetString());
                Assert.Equal(inBackup.Count, read.Count);
                foreach (var (id, content) in inBackup)
                {
                    Assert.Equal(content, read[id]);
                }
            }
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Scheduled_backups_run_at_the_interval_and_keep_only_the_newest()
    {
        var dir = Directory.CreateTempSubdirectory("jackcwf-scheduled-").FullName;
        var backups = Path.Combine(dir, "kept");
        try
        {
            var environment = new Dictionary<string, string?>
            {
                // 0.0005 h = 1.8 s between backups.
                ["BACKUP_INTERVAL_HOURS"] = "0.0005",
                ["BACKUP_KEEP"] = "2",
                ["BACKUP_DIR"] = backups,
            };
            await using (var api = await Service.StartAsync(environment, workingDirectory: dir))
            {
                using var user = await TestUser.SignUpAsync(api);
                var written = 0;
                await api.Log.WaitForAsync(l => l.Contains("SQLite backup written", StringComparison.Ordinal) && ++written == 4, "a fourth scheduled backup", TimeSpan.FromSeconds(90), TestContext.Current.CancellationToken);
            }
            var files = Directory.GetFiles(backups, "jackcwf-*.db").Order(StringComparer.Ordinal).ToList();
            Assert.Equal(2, files.Count);
            Assert.Equal(["ok"], Pragma(files[^1], "integrity_check"));
            Assert.Equal(["1"], Query(files[^1], "SELECT count(*) FROM AspNetUsers"));

            // An unusable folder stops the start with a message naming the variable.
            var blocker = Path.Combine(dir, "a-file");
            await File.WriteAllTextAsync(blocker, "", TestContext.Current.CancellationToken);
            var (code, _, stderr) = await Service.RunToExitAsync(new Dictionary<string, string?> { ["BACKUP_DIR"] = Path.Combine(blocker, "sub"), ["DATABASE_URL"] = null }, TimeSpan.FromSeconds(120));
            Assert.Equal(2, code);
            Assert.Contains("BACKUP_DIR", stderr, StringComparison.Ordinal);
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            Directory.Delete(dir, recursive: true);
        }
    }

    private static Dictionary<Guid, string> ReadUserMessages(string file) =>
        QueryRows(file, "SELECT Id, Content FROM messages WHERE Role = 'user'").ToDictionary(r => Guid.Parse(r[0]), r => r[1]);

    private static List<string> Pragma(string file, string pragma) => Query(file, $"PRAGMA {pragma}");

    private static List<string> Query(string file, string sql) => QueryRows(file, sql).Select(r => r[0]).ToList();

    private static List<string[]> QueryRows(string file, string sql)
    {
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = file, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ConnectionString);
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var rows = new List<string[]>();
        while (reader.Read())
        {
            rows.Add(Enumerable.Range(0, reader.FieldCount).Select(i => Convert.ToString(reader.GetValue(i), System.Globalization.CultureInfo.InvariantCulture)!).ToArray());
        }
        return rows;
    }
}
