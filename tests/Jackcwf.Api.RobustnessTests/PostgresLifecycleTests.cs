using System.Diagnostics;
using System.Net;
using Jackcwf.Api.RobustnessTests.Infrastructure;
using Npgsql;

namespace Jackcwf.Api.RobustnessTests;

/// <summary>Schema migration on PostgreSQL: the migrate command, MIGRATE_ON_STARTUP=false, and replicas starting together.</summary>
public sealed class PostgresLifecycleTests
{
    private static Dictionary<string, string?> On(TestDatabase db, bool migrateOnStartup = true) => new()
    {
        ["DATABASE_URL"] = db.Url,
        ["MIGRATE_ON_STARTUP"] = migrateOnStartup ? "true" : "false",
    };

    private static async Task<long> CountAsync(TestDatabase db, string sql)
    {
        await using var connection = await db.OpenConnectionAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task Migrate_command_prepares_a_fresh_database_for_a_service_that_does_not_migrate()
    {
        await using var db = await TestPostgres.CreateDatabaseAsync("migrate", TestContext.Current.CancellationToken);
        var migrate = await Service.RunCommandAsync(["migrate"], On(db));
        Assert.True(migrate.ExitCode == 0, $"migrate exited {migrate.ExitCode}:\n{migrate.Output}");
        Assert.True(await CountAsync(db, "SELECT count(*) FROM \"__EFMigrationsHistory\"") >= 1);
        // Running it again is harmless.
        var again = await Service.RunCommandAsync(["migrate"], On(db));
        Assert.True(again.ExitCode == 0, $"second migrate exited {again.ExitCode}:\n{again.Output}");

        await using var api = await Service.StartAsync(On(db, migrateOnStartup: false));
        using var user = await TestUser.SignUpAsync(api);
        var conversation = await user.CreateConversationAsync();
        Assert.Equal(1, await CountAsync(db, $"SELECT count(*) FROM conversations WHERE \"Id\" = '{conversation}'"));
    }

    [Fact]
    public async Task Without_migration_on_start_up_an_empty_database_keeps_the_service_live_but_unready_until_migrate_runs()
    {
        await using var db = await TestPostgres.CreateDatabaseAsync("unready", TestContext.Current.CancellationToken);
        await using var api = await Service.StartAsync(On(db, migrateOnStartup: false), waitForReady: false);
        using var client = api.CreateClient();
        await SecretTests.WaitForStatusAsync(client, "health/live", HttpStatusCode.OK);
        await api.WaitForLogAsync("MIGRATE_ON_STARTUP=false", TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < TimeSpan.FromSeconds(3))
        {
            using var ready = await client.GetAsync("health/ready", TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
            using var live = await client.GetAsync("health/live", TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.OK, live.StatusCode);
            await Task.Delay(300, TestContext.Current.CancellationToken);
        }
        Assert.Equal(0, await CountAsync(db, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"));

        var migrate = await Service.RunCommandAsync(["migrate"], On(db));
        Assert.True(migrate.ExitCode == 0, $"migrate exited {migrate.ExitCode}:\n{migrate.Output}");
        // The replica re-checks the schema every 2 s.
        await SecretTests.WaitForStatusAsync(client, "health/ready", HttpStatusCode.OK, seconds: 15);
        using var user = await TestUser.SignUpAsync(api);
        await user.CreateConversationAsync();
    }

    [Fact]
    public async Task Three_replicas_starting_together_on_an_empty_database_all_become_ready_and_migrate_once()
    {
        await using var db = await TestPostgres.CreateDatabaseAsync("replicas", TestContext.Current.CancellationToken);
        var starts = Enumerable.Range(0, 3).Select(_ => Service.StartAsync(On(db))).ToArray();
        var replicas = new List<ApiProcess>();
        try
        {
            foreach (var start in starts)
            {
                replicas.Add(await start);
            }
            var applying = replicas.Where(r => r.LogLines.Any(l => l.Contains("Applying ", StringComparison.Ordinal))).ToList();
            Assert.True(applying.Count == 1, $"{applying.Count} replicas applied migrations");
            var migrations = await CountAsync(db, "SELECT count(*) FROM \"__EFMigrationsHistory\"");
            Assert.True(migrations >= 1);
            foreach (var r in replicas)
            {
                // Logged just before readiness turns 200; the console logger writes it from its own queue, so wait for it.
                await r.WaitForLogAsync("Database schema is current", TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
            }

            // A token issued by one replica works on the others (one key ring in the database).
            using var user = await TestUser.SignUpAsync(replicas[0]);
            foreach (var r in replicas.Skip(1))
            {
                using var other = r.CreateClient();
                other.DefaultRequestHeaders.Authorization = user.Client.DefaultRequestHeaders.Authorization;
                using var me = await other.GetAsync("api/me", TestContext.Current.CancellationToken);
                Assert.Equal(HttpStatusCode.OK, me.StatusCode);
            }
        }
        finally
        {
            foreach (var start in starts)
            {
                if (start.IsCompletedSuccessfully)
                {
                    await (await start).DisposeAsync();
                }
            }
        }
    }
}
