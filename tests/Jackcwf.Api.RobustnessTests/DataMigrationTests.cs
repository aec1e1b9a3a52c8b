using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Jackcwf.Api.RobustnessTests.Infrastructure;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Jackcwf.Api.RobustnessTests;

/// <summary><c>migrate-data</c>: a generated SQLite data set moved to PostgreSQL, verified, run again harmlessly, and used.</summary>
public sealed class DataMigrationTests
{
    private const int Users = 3;
    private const int ConversationsPerUser = 40;
    private const int MessagesPerConversation = 84;

    private sealed record Account(string Email, string Password, string ApiKey);

    [Fact]
    public async Task Sqlite_data_set_moves_to_PostgreSQL_verified_rerun_is_harmless_and_old_passwords_and_keys_work()
    {
        var dir = Directory.CreateTempSubdirectory("jackcwf-move-").FullName;
        var sqlite = Path.Combine(dir, "data", "jackcwf.db");
        await using var pg = await TestPostgres.CreateDatabaseAsync("move", TestContext.Current.CancellationToken);
        try
        {
            var accounts = new List<Account>();
            await using (var api = await Service.StartAsync(new Dictionary<string, string?> { ["DEMO_CHUNK_DELAY_MS"] = "0" }, workingDirectory: dir))
            {
                for (var i = 0; i < Users; i++)
                {
                    using var user = await TestUser.SignUpAsync(api);
                    using var created = await user.Client.PostAsJsonAsync("api/keys", new { name = "laptop" });
                    Assert.Equal(HttpStatusCode.Created, created.StatusCode);
                    var key = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString()!;
                    var conversation = await user.CreateConversationAsync("template");
                    await user.ChatAsync(conversation, "first question");
                    await user.ChatAsync(conversation, "second question");
                    accounts.Add(new Account(user.Email, user.Password, key));
                }
                // Stopped like before a real move: the graceful stop writes the usage lines still queued.
                Assert.Equal(0, await api.StopAsync(TimeSpan.FromSeconds(60)));
            }
            var generated = Generate(sqlite);
            var sourceBefore = FileHash(sqlite);
            var sourceCounts = await CountsAsync(sqlite, pg: null);
            Assert.True(sourceCounts["messages"] >= 10_000, $"only {sourceCounts["messages"]} messages generated");
            Assert.True(sourceCounts["usage_records"] > 0 && sourceCounts["api_keys"] == Users && sourceCounts["DataProtectionKeys"] > 0);

            var watch = Stopwatch.StartNew();
            var first = await MigrateDataAsync(dir, sqlite, pg.Url);
            var seconds = watch.Elapsed.TotalSeconds;
            Assert.True(first.ExitCode == 0, $"migrate-data exited {first.ExitCode}:\n{first.Output}");
            Assert.Contains("rows verified", first.Output, StringComparison.Ordinal);
            TestContext.Current.SendDiagnosticMessage(
                $"migrate-data: {sourceCounts.Values.Sum()} rows ({sourceCounts["messages"]} messages, {new FileInfo(sqlite).Length / 1024} KiB SQLite) moved and verified in {seconds:0.0} s");

            Assert.Equal(sourceCounts, await CountsAsync(sqlite, pg));
            Assert.Equal(MessageDigest(sqlite), await MessageDigestAsync(pg));
            Assert.Equal(sourceBefore, FileHash(sqlite));

            var second = await MigrateDataAsync(dir, sqlite, pg.Url);
            Assert.True(second.ExitCode == 0, $"second migrate-data exited {second.ExitCode}:\n{second.Output}");
            Assert.Matches(@"messages\s+0 copied\s+\d+ already there", second.Output);
            Assert.Equal(sourceCounts, await CountsAsync(sqlite, pg));

            await using (var api = await Service.StartAsync(new Dictionary<string, string?> { ["DATABASE_URL"] = pg.Url, ["DEMO_CHUNK_DELAY_MS"] = "0" }))
            {
                foreach (var account in accounts)
                {
                    using var client = api.CreateClient();
                    using var login = await client.PostAsJsonAsync("api/auth/login", new { email = account.Email, password = account.Password });
                    Assert.Equal(HttpStatusCode.OK, login.StatusCode);
                    client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer",
                        (await login.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("accessToken").GetString());
                    var list = await client.GetFromJsonAsync<JsonElement>("api/conversations?limit=100");
                    Assert.Equal(ConversationsPerUser + 1, list.GetProperty("items").GetArrayLength());

                    using var gateway = api.CreateClient();
                    gateway.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", account.ApiKey);
                    using var completion = await gateway.PostAsJsonAsync("v1/chat/completions",
                        new { model = "demo/echo", messages = new[] { new { role = "user", content = "still there?" } } });
                    Assert.Equal(HttpStatusCode.OK, completion.StatusCode);
                }
                // New rows get fresh ids after the copied ones (identity sequences were moved on); the graceful
                // stop writes the usage lines still queued.
                Assert.Equal(0, await api.StopAsync(TimeSpan.FromSeconds(60)));
                await using var connection = await pg.OpenConnectionAsync();
                await using var count = new NpgsqlCommand("SELECT count(*) FROM usage_records", connection);
                Assert.Equal(sourceCounts["usage_records"] + Users, (long)(await count.ExecuteScalarAsync())!);
            }

            // A target that differs from the source is refused before anything is written.
            await using (var connection = await pg.OpenConnectionAsync())
            {
                await using var tamper = new NpgsqlCommand($"UPDATE messages SET \"Content\" = 'changed' WHERE \"Id\" = '{generated}'", connection);
                Assert.Equal(1, await tamper.ExecuteNonQueryAsync());
            }
            var refused = await MigrateDataAsync(dir, sqlite, pg.Url);
            Assert.Equal(1, refused.ExitCode);
            Assert.Contains("holds rows that are not in the source or differ", refused.Output, StringComparison.Ordinal);
            Assert.Equal(sourceBefore, FileHash(sqlite));
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            Directory.Delete(dir, recursive: true);
        }
    }

    private static Task<ApiCommandResult> MigrateDataAsync(string dir, string sqlite, string pgUrl) =>
        ApiProcess.RunCommandAsync(["migrate-data", "--from", $"Data Source={sqlite}", "--to", pgUrl],
            new ApiProcessOptions { Port = Ports.Next(), WorkingDirectory = dir, Environment = new Dictionary<string, string?> { ["DATABASE_URL"] = null } },
            TimeSpan.FromSeconds(300));

    /// <summary>
    /// Clones the rows the service wrote into a large data set: conversations for every user, long
    /// message chains with a branch (two answers to one message) every tenth message, and usage rows.
    /// Returns the id of one generated message.
    /// </summary>
    private static Guid Generate(string sqlite)
    {
        using var connection = new SqliteConnection($"Data Source={sqlite};Pooling=False");
        connection.Open();
        using var tx = connection.BeginTransaction();
        var users = Column(connection, "SELECT Id FROM AspNetUsers");
        var upper = users[0] == users[0].ToUpperInvariant();
        string NewId() => upper ? Guid.NewGuid().ToString().ToUpperInvariant() : Guid.NewGuid().ToString();
        var last = Guid.Empty;
        foreach (var user in users)
        {
            var conversationTemplate = Column(connection, $"SELECT Id FROM conversations WHERE UserId = '{user}'")[0];
            var userTemplate = Column(connection, $"SELECT Id FROM messages WHERE UserId = '{user}' AND Role = 'user'")[0];
            var answerTemplate = Column(connection, $"SELECT Id FROM messages WHERE UserId = '{user}' AND Role = 'assistant'")[0];
            var usageTemplate = Column(connection, $"SELECT Id FROM usage_records WHERE UserId = '{user}'")[0];
            for (var c = 0; c < ConversationsPerUser; c++)
            {
                var conversation = NewId();
                Clone(connection, "conversations", conversationTemplate, new() { ["Id"] = conversation, ["Title"] = $"Generated {c} — «{user[..4]}»" });
                string? parent = null;
                for (var m = 0; m < MessagesPerConversation; m++)
                {
                    var id = NewId();
                    var isUser = m % 2 == 0;
                    // Every tenth message answers the same parent as the previous one: a branch.
                    var branchParent = m % 10 == 9 ? parent : null;
                    Clone(connection, "messages", isUser ? userTemplate : answerTemplate, new()
                    {
                        ["Id"] = id,
                        ["ConversationId"] = conversation,
                        ["ParentMessageId"] = branchParent ?? parent,
                        ["Content"] = $"{(isUser ? "Question" : "Answer")} {c}.{m}: naïve café 🚀 \"quotes\" 'single' \\ {new string('x', m * 7)}",
                    });
                    if (!isUser)
                    {
                        Clone(connection, "usage_records", usageTemplate, new() { ["Id"] = NewId(), ["InputTokens"] = m, ["OutputTokens"] = m * 3 });
                    }
                    if (branchParent is null)
                    {
                        parent = id;
                    }
                    last = Guid.Parse(id);
                }
            }
        }
        tx.Commit();
        return last;
    }

    private static void Clone(SqliteConnection connection, string table, string templateId, Dictionary<string, object?> values)
    {
        var columns = Column(connection, $"SELECT name FROM pragma_table_info('{table}')");
        using var command = connection.CreateCommand();
        var select = columns.Select(c => values.ContainsKey(c) ? "@" + c : $"\"{c}\"");
        command.CommandText = $"INSERT INTO \"{table}\" ({string.Join(", ", columns.Select(c => $"\"{c}\""))}) SELECT {string.Join(", ", select)} FROM \"{table}\" WHERE \"Id\" = @template";
        command.Parameters.AddWithValue("@template", templateId);
        foreach (var (k, v) in values)
        {
            command.Parameters.AddWithValue("@" + k, v ?? DBNull.Value);
        }
        Assert.Equal(1, command.ExecuteNonQuery());
    }

    private static List<string> Column(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var values = new List<string>();
        while (reader.Read())
        {
            values.Add(reader.GetString(0));
        }
        return values;
    }

    private static readonly string[] Tables = ["AspNetUsers", "AspNetRoles", "AspNetUserRoles", "api_keys", "conversations", "messages", "usage_records", "DataProtectionKeys", "idempotency_keys"];

    private static async Task<Dictionary<string, long>> CountsAsync(string sqlite, TestDatabase? pg)
    {
        var counts = new Dictionary<string, long>();
        if (pg is null)
        {
            using var connection = new SqliteConnection($"Data Source={sqlite};Mode=ReadOnly;Pooling=False");
            connection.Open();
            foreach (var t in Tables)
            {
                counts[t] = long.Parse(Column(connection, $"SELECT count(*) FROM \"{t}\"")[0], System.Globalization.CultureInfo.InvariantCulture);
            }
            return counts;
        }
        await using var pgConnection = await pg.OpenConnectionAsync();
        foreach (var t in Tables)
        {
            await using var command = new NpgsqlCommand($"SELECT count(*) FROM \"{t}\"", pgConnection);
            counts[t] = (long)(await command.ExecuteScalarAsync())!;
        }
        return counts;
    }

    /// <summary>SHA-256 over every message's id, parent and content, byte for byte, in id order.</summary>
    private static string MessageDigest(string sqlite)
    {
        using var connection = new SqliteConnection($"Data Source={sqlite};Mode=ReadOnly;Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT Id, ParentMessageId, Content FROM messages";
        using var reader = command.ExecuteReader();
        var rows = new List<(string, string, string)>();
        while (reader.Read())
        {
            rows.Add((reader.GetString(0).ToLowerInvariant(), reader.IsDBNull(1) ? "" : reader.GetString(1).ToLowerInvariant(), reader.GetString(2)));
        }
        return Digest(rows);
    }

    private static async Task<string> MessageDigestAsync(TestDatabase pg)
    {
        await using var connection = await pg.OpenConnectionAsync();
        await using var command = new NpgsqlCommand("SELECT \"Id\"::text, COALESCE(\"ParentMessageId\"::text, ''), \"Content\" FROM messages", connection);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<(string, string, string)>();
        while (await reader.ReadAsync())
        {
            rows.Add((reader.GetString(0), reader.GetString(1), reader.GetString(2)));
        }
        return Digest(rows);
    }

    private static string Digest(List<(string Id, string Parent, string Content)> rows)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var (id, parent, content) in rows.OrderBy(r => r.Id, StringComparer.Ordinal))
        {
            sha.AppendData(Encoding.UTF8.GetBytes($"{id}\n{parent}\n{content.Length}\n{content}\n"));
        }
        return $"{rows.Count} messages, sha256 {Convert.ToHexStringLower(sha.GetHashAndReset())}";
    }

    private static string FileHash(string path)
    {
        SqliteConnection.ClearAllPools();
        return Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));
    }
}
