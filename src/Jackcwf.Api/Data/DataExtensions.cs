using System.Data;
using System.Data.Common;
using System.Diagnostics;
using System.Globalization;
using Jackcwf.Api.Configuration;
using Jackcwf.ServiceDefaults;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Jackcwf.Api.Data;

public static class DataExtensions
{
    public static IHostApplicationBuilder AddData(this IHostApplicationBuilder builder)
    {
        // Read before the container exists: the provider decides which DbContext is registered.
        var connection = DatabaseConnection.Parse(builder.Configuration[DatabaseOptions.UrlKey], Directory.GetCurrentDirectory());
        var s = builder.Services;
        s.AddSettings<DatabaseOptions>(DatabaseOptions.Section);
        s.AddSingleton<IValidateOptions<DatabaseOptions>, ValidateDatabaseOptions>();
        s.TryAddSingleton(TimeProvider.System);
        s.AddSingleton(connection);
        s.AddSingleton<SchemaState>();
        s.AddSingleton<DbMetricsInterceptor>();
        if (connection.Provider == DatabaseProvider.Sqlite)
        {
            s.AddDbContextPool<AppDbContext, SqliteAppDbContext>((sp, o) => o
                .UseSqlite(connection.ConnectionString)
                .AddInterceptors(sp.GetRequiredService<DbMetricsInterceptor>()));
        }
        else
        {
            s.AddDbContextPool<AppDbContext, PostgresAppDbContext>((sp, o) => o
                .UseNpgsql(ServiceConnectionString(connection.ConnectionString), npgsql => npgsql.ExecutionStrategy(d => new FailoverExecutionStrategy(d)))
                .AddInterceptors(sp.GetRequiredService<DbMetricsInterceptor>()));
        }
        if (connection.Provider == DatabaseProvider.Sqlite)
        {
            // Before the migrator: a service never touches a database that a restore is replacing.
            s.AddHostedService<Backup.SqliteDatabaseLockHolder>();
        }
        s.AddHostedService<DatabaseMigrator>();
        s.AddHealthChecks().AddCheck<DatabaseHealthCheck>("database", tags: [Extensions.ReadyTag]);
        return builder;
    }

    /// <summary>
    /// The service's connection string. Its connections skip Npgsql's <c>DISCARD ALL</c> when they go back
    /// to the pool (<c>No Reset On Close</c>): it was one statement, and one more round trip, on every
    /// connection taken, about two per chat message. Nothing here leaves session state behind: no <c>SET</c>,
    /// temporary tables or <c>LISTEN</c>, and the migration's advisory lock is released before its
    /// connection returns (or the connection is dropped). Npgsql still rolls back a transaction left open.
    /// An operator can set <c>No Reset On Close=false</c> in <c>DATABASE_URL</c> to keep the reset.
    /// <para>
    /// Statements are prepared on each connection once they have run <see cref="AutoPrepareMinUsages"/>
    /// times (<c>Max Auto Prepare</c>, up to <see cref="MaxAutoPrepare"/> per connection): PostgreSQL then
    /// parses and plans them once, not on every execution. Parsing and planning were a third of the
    /// database's CPU on a chat message (its conversation read alone planned for 0.4 ms). Every statement
    /// names its columns, so an expand-only migration (a new column, table or index) never changes the
    /// result of a prepared one; PostgreSQL re-plans them itself when a table they read changes.
    /// <c>Max Auto Prepare=0</c> in <c>DATABASE_URL</c> switches it off (a pooler in transaction mode
    /// older than PgBouncer 1.21 cannot carry prepared statements).
    /// </para>
    /// </summary>
    internal static string ServiceConnectionString(string connectionString)
    {
        var b = new NpgsqlConnectionStringBuilder(connectionString);
        if (!connectionString.Contains("reset on close", StringComparison.OrdinalIgnoreCase)
            && !connectionString.Contains("noresetonclose", StringComparison.OrdinalIgnoreCase))
        {
            b.NoResetOnClose = true;
        }
        if (!connectionString.Contains("max auto prepare", StringComparison.OrdinalIgnoreCase)
            && !connectionString.Contains("maxautoprepare", StringComparison.OrdinalIgnoreCase))
        {
            b.MaxAutoPrepare = MaxAutoPrepare;
        }
        if (!connectionString.Contains("min usages", StringComparison.OrdinalIgnoreCase)
            && !connectionString.Contains("autoprepareminusages", StringComparison.OrdinalIgnoreCase))
        {
            b.AutoPrepareMinUsages = AutoPrepareMinUsages;
        }
        return b.ConnectionString;
    }

    /// <summary>Statements prepared per connection (least recently used ones are unprepared first).</summary>
    internal const int MaxAutoPrepare = 200;

    /// <summary>Executions of a statement on a connection before it is prepared there.</summary>
    internal const int AutoPrepareMinUsages = 2;

    /// <summary>
    /// Applies pending migrations once, under a PostgreSQL advisory lock so replicas (and the
    /// migrate Job) starting together take turns; SQLite is switched to WAL for concurrent readers.
    /// </summary>
    public static async Task MigrateAsync(AppDbContext db, ILogger logger, CancellationToken ct)
    {
        if (db.Provider == DatabaseProvider.Sqlite)
        {
            await db.Database.OpenConnectionAsync(ct);
            try
            {
                await db.Database.ExecuteSqlRawAsync("PRAGMA journal_mode=WAL;", ct);
                await MigrateLoggedAsync(db, logger, ct);
            }
            finally
            {
                await db.Database.CloseConnectionAsync();
            }
            return;
        }
        // Session-level lock on one connection; EF keeps using that open connection for the migration.
        await db.Database.OpenConnectionAsync(ct);
        try
        {
            await LockMigrationsAsync(db, logger, ct);
            try
            {
                await MigrateLoggedAsync(db, logger, ct);
            }
            finally
            {
                try
                {
                    await db.Database.ExecuteSqlRawAsync("SELECT pg_advisory_unlock(7316244401)", CancellationToken.None);
                }
                catch
                {
                    // Pooled connections are not reset: this one must not go back holding the lock.
                    if (db.Database.GetDbConnection() is NpgsqlConnection held)
                    {
                        NpgsqlConnection.ClearPool(held);
                    }
                    throw;
                }
            }
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }
    }

    /// <summary>
    /// Takes the migrations' session-level advisory lock, asking for it every 250 ms with
    /// <c>pg_try_advisory_lock</c> rather than waiting inside <c>pg_advisory_lock</c>. A session waiting in that
    /// statement holds a snapshot, and a migration that builds an index <c>CONCURRENTLY</c> waits for every older
    /// snapshot of the database to end: the lock holder waits for the waiter, which waits for the lock, a deadlock
    /// PostgreSQL ends by cancelling the index build (three replicas starting together on an empty database did it
    /// every time). Each short try holds its snapshot for that statement only.
    /// </summary>
    private static async Task LockMigrationsAsync(AppDbContext db, ILogger logger, CancellationToken ct)
    {
        var connection = db.Database.GetDbConnection();
        var waiting = Stopwatch.StartNew();
        var logged = false;
        while (true)
        {
            await using (var command = connection.CreateCommand())
            {
                command.CommandText = "SELECT pg_try_advisory_lock(7316244401)";
                if (await command.ExecuteScalarAsync(ct) is true)
                {
                    if (logged)
                    {
                        logger.LogInformation("Migration lock taken after {Seconds:F1} s", waiting.Elapsed.TotalSeconds);
                    }
                    return;
                }
            }
            if (!logged)
            {
                logger.LogInformation("Another replica or the migrate command is migrating the database; waiting for it");
                logged = true;
            }
            await Task.Delay(TimeSpan.FromMilliseconds(250), ct);
        }
    }

    private static async Task MigrateLoggedAsync(AppDbContext db, ILogger logger, CancellationToken ct)
    {
        if (await IsSchemaCurrentAsync(db, ct))
        {
            logger.LogInformation("Database schema is current");
            return;
        }
        // Create the history table first, so a fresh database does not log a failed query against it.
        await db.GetService<Microsoft.EntityFrameworkCore.Migrations.IHistoryRepository>().CreateIfNotExistsAsync(ct);
        var pending = (await db.Database.GetPendingMigrationsAsync(ct)).ToList();
        if (pending.Count == 0)
        {
            logger.LogInformation("Database schema is current");
            return;
        }
        logger.LogInformation("Applying {Count} migration(s): {Migrations}", pending.Count, string.Join(", ", pending));
        await db.Database.MigrateAsync(ct);
        logger.LogInformation("Database schema is current");
    }

    /// <summary>
    /// True when the history table records every migration this build carries (what
    /// <c>GetPendingMigrations</c> answers with an empty list), read with two plain queries: does the
    /// table exist, which ids does it hold. EF Core's own check first builds the history table's model
    /// and the SQL to create it, most of a restart's schema check; it still runs whenever this answers
    /// false (an empty database, a pending migration).
    /// </summary>
    internal static async Task<bool> IsSchemaCurrentAsync(AppDbContext db, CancellationToken ct)
    {
        var expected = db.GetService<IMigrationsAssembly>().Migrations.Keys;
        var table = HistoryRepository.DefaultTableName; // no context configures another history table
        var connection = db.Database.GetDbConnection();
        var wasOpen = connection.State == ConnectionState.Open;
        if (!wasOpen)
        {
            await db.Database.OpenConnectionAsync(ct);
        }
        try
        {
            await using var command = connection.CreateCommand();
            command.Transaction = db.Database.CurrentTransaction?.GetDbTransaction();
            command.CommandText = db.Provider == DatabaseProvider.Sqlite
                ? $"SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '{table}'"
                : $"SELECT to_regclass('\"{table}\"') IS NOT NULL";
            if (!Convert.ToBoolean(await command.ExecuteScalarAsync(ct), CultureInfo.InvariantCulture))
            {
                return false;
            }
            command.CommandText = $"SELECT \"MigrationId\" FROM \"{table}\"";
            var applied = new HashSet<string>(StringComparer.Ordinal);
            await using (var reader = await command.ExecuteReaderAsync(ct))
            {
                while (await reader.ReadAsync(ct))
                {
                    applied.Add(reader.GetString(0));
                }
            }
            return expected.All(applied.Contains);
        }
        finally
        {
            if (!wasOpen)
            {
                await db.Database.CloseConnectionAsync();
            }
        }
    }
}
