using Jackcwf.Api.Data;
using Jackcwf.Testing;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging.Abstractions;

namespace Jackcwf.Api.Tests;

/// <summary>
/// A start on a current schema asks the history table with plain queries
/// (<see cref="DataExtensions.IsSchemaCurrentAsync"/>) instead of EF Core's pending-migrations check:
/// both must answer alike for an empty database, a migrated one, one missing a migration (an older
/// one as well as the newest) and one migrated by a newer release (an id this build does not know).
/// </summary>
public sealed class SchemaCheckTests
{
    public static TheoryData<DatabaseProvider> Providers => [DatabaseProvider.Sqlite, DatabaseProvider.PostgreSql];

    [Theory]
    [MemberData(nameof(Providers))]
    public async Task The_plain_check_answers_what_EF_Cores_pending_migrations_answer(DatabaseProvider provider)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var database = await TestDatabaseFor.CreateAsync(provider, ct);
        await using var db = database.CreateContext();
        var ids = (await db.Database.GetPendingMigrationsAsync(ct)).ToList();
        Assert.True(ids.Count >= 2, "the build carries at least two migrations");

        // Empty: no history table at all.
        Assert.False(await DataExtensions.IsSchemaCurrentAsync(db, ct));

        await DataExtensions.MigrateAsync(db, NullLogger.Instance, ct);
        Assert.Empty(await db.Database.GetPendingMigrationsAsync(ct));
        Assert.True(await DataExtensions.IsSchemaCurrentAsync(db, ct));

        // A newer release's migration recorded beside ours: nothing is pending for this build.
        await db.Database.ExecuteSqlRawAsync(
            "INSERT INTO \"__EFMigrationsHistory\" (\"MigrationId\", \"ProductVersion\") VALUES ('99991231235959_FromANewerRelease', '10.0.0')", ct);
        Assert.Empty(await db.Database.GetPendingMigrationsAsync(ct));
        Assert.True(await DataExtensions.IsSchemaCurrentAsync(db, ct));

        // The newest, then an older one missing (a branch merged with an earlier id): pending, for both.
        foreach (var missing in new[] { ids[^1], ids[0] })
        {
            await db.Database.ExecuteSqlRawAsync("DELETE FROM \"__EFMigrationsHistory\" WHERE \"MigrationId\" = {0}", [missing], ct);
            Assert.Contains(missing, await db.Database.GetPendingMigrationsAsync(ct));
            Assert.False(await DataExtensions.IsSchemaCurrentAsync(db, ct));
            await db.Database.ExecuteSqlRawAsync(
                "INSERT INTO \"__EFMigrationsHistory\" (\"MigrationId\", \"ProductVersion\") VALUES ({0}, '10.0.0')", [missing], ct);
            Assert.True(await DataExtensions.IsSchemaCurrentAsync(db, ct));
        }
    }

    [Theory]
    [MemberData(nameof(Providers))]
    public async Task The_check_leaves_an_open_connection_open_and_a_closed_one_closed(DatabaseProvider provider)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var database = await TestDatabaseFor.CreateAsync(provider, ct);
        await using var db = database.CreateContext();
        await DataExtensions.MigrateAsync(db, NullLogger.Instance, ct);

        Assert.True(await DataExtensions.IsSchemaCurrentAsync(db, ct));
        Assert.Equal(System.Data.ConnectionState.Closed, db.Database.GetDbConnection().State);

        await db.Database.OpenConnectionAsync(ct);
        Assert.True(await DataExtensions.IsSchemaCurrentAsync(db, ct));
        Assert.Equal(System.Data.ConnectionState.Open, db.Database.GetDbConnection().State);
        await db.Database.CloseConnectionAsync();
    }

    /// <summary>An empty database of either provider: a SQLite file in a temporary folder, or a throwaway PostgreSQL database.</summary>
    internal sealed class TestDatabaseFor : IAsyncDisposable
    {
        private readonly string? _folder;
        private readonly TestDatabase? _postgres;

        private TestDatabaseFor(string? folder, TestDatabase? postgres)
        {
            _folder = folder;
            _postgres = postgres;
        }

        public static async Task<TestDatabaseFor> CreateAsync(DatabaseProvider provider, CancellationToken ct)
        {
            if (provider == DatabaseProvider.PostgreSql)
            {
                return new TestDatabaseFor(null, await TestPostgres.CreateDatabaseAsync("schemacheck", ct));
            }
            var folder = Path.Combine(Path.GetTempPath(), $"jackcwf-schemacheck-{Guid.NewGuid():N}");
            Directory.CreateDirectory(folder);
            return new TestDatabaseFor(folder, null);
        }

        /// <summary>A context on the database; <paramref name="npgsqlSettings"/> are added to PostgreSQL's connection string.</summary>
        public AppDbContext CreateContext(string npgsqlSettings = "") => _postgres is { } pg
            ? new PostgresAppDbContext(new DbContextOptionsBuilder<PostgresAppDbContext>().UseNpgsql(pg.ConnectionString + npgsqlSettings).Options)
            : new SqliteAppDbContext(new DbContextOptionsBuilder<SqliteAppDbContext>()
                .UseSqlite($"Data Source={Path.Combine(_folder!, "app.db")};Pooling=False").Options);

        public async ValueTask DisposeAsync()
        {
            if (_postgres is not null)
            {
                await _postgres.DisposeAsync();
            }
            if (_folder is not null)
            {
                Directory.Delete(_folder, recursive: true);
            }
        }
    }
}

/// <summary>Start-up work that can wait (the first file sweep, the setup-token notice) starts after the first readiness answer.</summary>
public sealed class SchemaStateTests
{
    [Fact]
    public async Task Start_up_work_waits_for_the_schema_then_for_readiness_to_answer()
    {
        var ct = TestContext.Current.CancellationToken;
        var state = new SchemaState();
        var started = state.WhenStartedAsync(ct);

        // Readiness answering before the schema is current (it cannot, but the order must not matter) is not enough.
        state.MarkReadinessAnswered();
        await Task.Delay(50, ct);
        Assert.False(started.IsCompleted);

        state.MarkCurrent();
        await started.WaitAsync(TimeSpan.FromSeconds(30), ct);
    }

    [Fact]
    public async Task Without_a_readiness_probe_start_up_work_still_starts_once_the_schema_is_current()
    {
        var ct = TestContext.Current.CancellationToken;
        var state = new SchemaState();
        var started = state.WhenStartedAsync(ct);
        state.MarkCurrent();
        await started.WaitAsync(SchemaState.ReadinessWait + TimeSpan.FromSeconds(30), ct);
    }

    [Fact]
    public async Task Stopping_ends_the_wait()
    {
        var state = new SchemaState();
        using var stop = new CancellationTokenSource();
        var started = state.WhenStartedAsync(stop.Token);
        state.MarkCurrent();
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => started.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken));
    }
}
