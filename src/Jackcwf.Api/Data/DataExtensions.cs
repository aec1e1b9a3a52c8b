using System.Data.Common;
using System.Diagnostics;
using Jackcwf.Api.Configuration;
using Jackcwf.Api.Health;
using Jackcwf.Api.Telemetry;
using Jackcwf.ServiceDefaults;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;
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
                .UseNpgsql(connection.ConnectionString, npgsql => npgsql.ExecutionStrategy(d => new FailoverExecutionStrategy(d)))
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
            await db.Database.ExecuteSqlRawAsync("SELECT pg_advisory_lock(7316244401)", ct);
            try
            {
                await MigrateLoggedAsync(db, logger, ct);
            }
            finally
            {
                await db.Database.ExecuteSqlRawAsync("SELECT pg_advisory_unlock(7316244401)", CancellationToken.None);
            }
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }
    }

    private static async Task MigrateLoggedAsync(AppDbContext db, ILogger logger, CancellationToken ct)
    {
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
}

/// <summary>True once this replica has seen the schema at its expected version.</summary>
public sealed class SchemaState
{
    private readonly TaskCompletionSource _current = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public bool IsCurrent => _current.Task.IsCompleted;

    public void MarkCurrent() => _current.TrySetResult();

    /// <summary>
    /// Completes once the schema is current. Background work that reads tables waits on this: a query
    /// before the first migration has created them fails, and EF Core logs that failure as an error.
    /// </summary>
    public Task WhenCurrentAsync(CancellationToken ct) => _current.Task.WaitAsync(ct);
}

/// <summary>
/// Migrates at start-up (or, with MIGRATE_ON_STARTUP=false, waits for the migrate Job) without
/// blocking the listener: <c>/health/live</c> answers at once, <c>/health/ready</c> once the schema is current.
/// </summary>
internal sealed class DatabaseMigrator(
    IServiceScopeFactory scopes, SchemaState state, IOptions<DatabaseOptions> options, ILogger<DatabaseMigrator> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var attempt = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var scope = scopes.CreateAsyncScope();
                var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
                if (options.Value.MigrateOnStartup)
                {
                    await DataExtensions.MigrateAsync(db, logger, stoppingToken);
                    state.MarkCurrent();
                    return;
                }
                if (await db.GetService<Microsoft.EntityFrameworkCore.Migrations.IHistoryRepository>().ExistsAsync(stoppingToken)
                    && !(await db.Database.GetPendingMigrationsAsync(stoppingToken)).Any())
                {
                    logger.LogInformation("Database schema is current");
                    state.MarkCurrent();
                    return;
                }
                if (attempt++ % 15 == 0)
                {
                    logger.LogWarning("Waiting for the schema to be migrated (MIGRATE_ON_STARTUP=false): run `Jackcwf.Api migrate`");
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                if (attempt++ % 5 == 0)
                {
                    logger.LogWarning("Database not reachable yet ({Error}); retrying", ex.GetType().Name);
                }
            }
            await Task.Delay(TimeSpan.FromSeconds(2), stoppingToken);
        }
    }
}

/// <summary>
/// Readiness: unready until the schema is current; after that a database that does not answer makes the
/// replica <c>degraded</c> (still 200), not unready. The database is shared, so when it is away (a primary
/// failover) it is away for every replica at once: taking them all out of the load balancer would turn a
/// failover that requests ride out (they retry and wait for the new primary) into refused requests, and
/// would cut streams that Redis still serves. See "Readiness during a database failover" in the HA guide.
/// </summary>
internal sealed class DatabaseHealthCheck(AppDbContext db, SchemaState schema, IOptions<MonitoringOptions> options) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (!schema.IsCurrent)
        {
            return HealthCheckResult.Unhealthy("schema not current yet");
        }
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(options.Value.HealthCheckTimeoutMs);
        try
        {
            return await db.Database.CanConnectAsync(cts.Token)
                ? HealthCheckResult.Healthy()
                : HealthCheckResult.Degraded("database unreachable");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return HealthCheckResult.Degraded($"database did not answer within {options.Value.HealthCheckTimeoutMs} ms");
        }
        catch (Exception ex) when (ex is DbException or InvalidOperationException or NpgsqlException)
        {
            return HealthCheckResult.Degraded("database unreachable");
        }
    }
}

/// <summary>Times every database command for <c>jackcwf_db_query_duration_seconds</c>.</summary>
internal sealed class DbMetricsInterceptor(JackcwfMetrics metrics, DatabaseConnection connection) : DbCommandInterceptor
{
    private readonly string _provider = connection.Provider == DatabaseProvider.PostgreSql ? "postgresql" : "sqlite";

    public override DbDataReader ReaderExecuted(DbCommand command, CommandExecutedEventData eventData, DbDataReader result)
    {
        Record(command, eventData.Duration);
        return result;
    }

    public override ValueTask<DbDataReader> ReaderExecutedAsync(DbCommand command, CommandExecutedEventData eventData, DbDataReader result, CancellationToken cancellationToken = default)
    {
        Record(command, eventData.Duration);
        return ValueTask.FromResult(result);
    }

    public override int NonQueryExecuted(DbCommand command, CommandExecutedEventData eventData, int result)
    {
        Record(command, eventData.Duration);
        return result;
    }

    public override ValueTask<int> NonQueryExecutedAsync(DbCommand command, CommandExecutedEventData eventData, int result, CancellationToken cancellationToken = default)
    {
        Record(command, eventData.Duration);
        return ValueTask.FromResult(result);
    }

    public override object? ScalarExecuted(DbCommand command, CommandExecutedEventData eventData, object? result)
    {
        Record(command, eventData.Duration);
        return result;
    }

    public override ValueTask<object?> ScalarExecutedAsync(DbCommand command, CommandExecutedEventData eventData, object? result, CancellationToken cancellationToken = default)
    {
        Record(command, eventData.Duration);
        return ValueTask.FromResult(result);
    }

    private void Record(DbCommand command, TimeSpan duration) =>
        metrics.DbCommand(_provider, Operation(command.CommandText), duration.TotalSeconds);

    private static string Operation(string sql)
    {
        var s = sql.AsSpan().TrimStart();
        // EF prefixes some statements with a comment or a PRAGMA/SET; the verb is what matters.
        return s.Length < 6 ? "other"
            : s.StartsWith("SELECT", StringComparison.OrdinalIgnoreCase) ? "select"
            : s.StartsWith("INSERT", StringComparison.OrdinalIgnoreCase) ? "insert"
            : s.StartsWith("UPDATE", StringComparison.OrdinalIgnoreCase) ? "update"
            : s.StartsWith("DELETE", StringComparison.OrdinalIgnoreCase) ? "delete"
            : "other";
    }
}
