using System.Data;
using System.Globalization;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using Jackcwf.Api.Data;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.Extensions.Logging.Abstractions;

namespace Jackcwf.Api.Backup;

/// <summary>
/// <c>migrate-data --from URL --to URL</c>: copies every table of the EF model (so tables added
/// later come along without a list to maintain) from one database to another, principal tables
/// before their dependents, in batches. Safe to run again: rows already in the target are
/// compared, not copied twice; a target holding rows the source does not have is refused before
/// anything is written. Each table is verified by row count and a content checksum. The source is
/// opened read-only and read inside one transaction (one snapshot).
/// </summary>
/// <remarks>
/// Hand-written because no kept tool copies between EF providers with their value conversions
/// (GUIDs and timestamps as text in SQLite, uuid and timestamptz in PostgreSQL); pgloader would
/// guess types and cannot verify against the model.
/// </remarks>
public sealed class DataMigration
{
    private const int BatchSize = 1000;
    private static readonly MethodInfo CopyMethod = typeof(DataMigration).GetMethod(nameof(CopyTableAsync), BindingFlags.NonPublic | BindingFlags.Instance)!;
    private static readonly MethodInfo ScanMethod = typeof(DataMigration).GetMethod(nameof(ScanAsync), BindingFlags.NonPublic | BindingFlags.Static)!;

    private readonly AppDbContext _source;
    private readonly AppDbContext _target;
    private readonly TextWriter _out;

    private DataMigration(AppDbContext source, AppDbContext target, TextWriter output)
    {
        _source = source;
        _target = target;
        _out = output;
    }

    public static async Task<int> RunAsync(string fromUrl, string toUrl, TextWriter output, CancellationToken ct)
    {
        var cwd = Directory.GetCurrentDirectory();
        DatabaseConnection origin, destination;
        try
        {
            origin = DatabaseConnection.Parse(fromUrl, cwd);
            destination = DatabaseConnection.Parse(toUrl, cwd);
        }
        catch (FormatException e)
        {
            throw new BackupRefusedException(e.Message.Replace("DATABASE_URL", "--from/--to", StringComparison.Ordinal));
        }
        if (origin.Provider == DatabaseProvider.Sqlite)
        {
            var path = new SqliteConnectionStringBuilder(origin.ConnectionString).DataSource;
            if (!File.Exists(path))
            {
                throw new BackupRefusedException($"--from: there is no SQLite database at {Path.GetFullPath(path)}.");
            }
            // Read-only: the source is never written, not even its schema.
            origin = origin with { ConnectionString = new SqliteConnectionStringBuilder(origin.ConnectionString) { Mode = SqliteOpenMode.ReadOnly }.ConnectionString };
        }
        if (origin.ConnectionString == destination.ConnectionString)
        {
            throw new BackupRefusedException("--from and --to name the same database.");
        }

        await using var source = Create(origin);
        await using var target = Create(destination);
        return await new DataMigration(source, target, output).RunAsync(ct);
    }

    private static AppDbContext Create(DatabaseConnection connection) => connection.Provider == DatabaseProvider.Sqlite
        ? new SqliteAppDbContext(new DbContextOptionsBuilder<SqliteAppDbContext>().UseSqlite(connection.ConnectionString).Options)
        : new PostgresAppDbContext(new DbContextOptionsBuilder<PostgresAppDbContext>().UseNpgsql(connection.ConnectionString).Options);

    private async Task<int> RunAsync(CancellationToken ct)
    {
        var pending = (await _source.Database.GetPendingMigrationsAsync(ct)).ToList();
        if (pending.Count > 0)
        {
            throw new BackupRefusedException(
                $"The source schema is older than this version ({pending.Count} migration(s) pending: {string.Join(", ", pending)}). "
                + "Start the service (or run `migrate`) on the source once, then run migrate-data again; migrate-data never writes to the source.");
        }
        var applied = (await _source.Database.GetAppliedMigrationsAsync(ct)).ToHashSet();
        if (applied.Except(_source.Database.GetMigrations()).ToList() is { Count: > 0 } unknown)
        {
            throw new BackupRefusedException($"The source was migrated by a newer version ({string.Join(", ", unknown)}); run migrate-data with that version.");
        }

        _out.WriteLine($"migrate-data: {Describe(_source)} -> {Describe(_target)}");
        await DataExtensions.MigrateAsync(_target, NullLogger.Instance, ct);
        _out.WriteLine("migrate-data: target schema is current");

        await using var snapshot = await BeginSnapshotAsync(ct);
        var tables = DependencyOrder(_source.Model);

        // Plan first: refuse before writing anything if the target holds rows the source does not.
        var plans = new List<TablePlan>();
        foreach (var type in tables)
        {
            var sourceRows = await ScanOf(type, _source, ct);
            var targetRows = await ScanOf(type, _target, ct);
            var foreign = targetRows.Where(t => !sourceRows.TryGetValue(t.Key, out var h) || !h.AsSpan().SequenceEqual(t.Value)).Take(3).ToList();
            if (foreign.Count > 0)
            {
                throw new BackupRefusedException(
                    $"The target table {type.GetTableName()} holds rows that are not in the source or differ from it (keys {string.Join(", ", foreign.Select(f => f.Key))}). "
                    + "migrate-data only fills an empty target or finishes an interrupted copy; point --to at a new database. Nothing was written.");
            }
            plans.Add(new TablePlan(type, sourceRows, targetRows.Count));
        }

        var total = 0L;
        foreach (var plan in plans)
        {
            var copied = plan.AlreadyThere == plan.Source.Count
                ? 0
                : await (Task<long>)CopyMethod.MakeGenericMethod(plan.Type.ClrType).Invoke(this, [plan, ct])!;
            var after = await ScanOf(plan.Type, _target, ct);
            var expected = Checksum(plan.Source.Values);
            var actual = Checksum(after.Values);
            if (after.Count != plan.Source.Count || expected != actual)
            {
                throw new BackupRefusedException(
                    $"Verification failed for {plan.Type.GetTableName()}: source {plan.Source.Count} rows ({expected[..12]}), target {after.Count} rows ({actual[..12]}). "
                    + "Is something writing to the target? Stop it and run migrate-data again.");
            }
            total += after.Count;
            _out.WriteLine($"  {plan.Type.GetTableName(),-28} {copied,8} copied {plan.AlreadyThere,8} already there {after.Count,8} rows verified  sha256 {actual[..16]}");
        }
        await ResetIdentitySequencesAsync(tables, ct);
        _out.WriteLine($"migrate-data: done, {plans.Count} tables, {total} rows verified (count and checksum); the source was not changed.");
        return 0;
    }

    private sealed record TablePlan(IEntityType Type, Dictionary<string, byte[]> Source, int AlreadyThere);

    private static string Describe(AppDbContext db)
    {
        var c = db.Database.GetDbConnection();
        return db.Provider == DatabaseProvider.Sqlite ? $"SQLite {c.DataSource}" : $"PostgreSQL {c.DataSource}/{c.Database}";
    }

    /// <summary>A read transaction on the source so every table is read from the same moment.</summary>
    private async Task<IAsyncDisposable> BeginSnapshotAsync(CancellationToken ct)
    {
        if (_source.Provider == DatabaseProvider.Sqlite)
        {
            await _source.Database.OpenConnectionAsync(ct);
            // Deferred: a read-only connection cannot take the write lock BEGIN IMMEDIATE asks for.
            var tx = ((SqliteConnection)_source.Database.GetDbConnection()).BeginTransaction(deferred: true);
            await _source.Database.UseTransactionAsync(tx, ct);
            return tx;
        }
        return await _source.Database.BeginTransactionAsync(IsolationLevel.RepeatableRead, ct);
    }

    /// <summary>Tables whose rows the database's own triggers keep, from other tables' rows.</summary>
    internal static readonly HashSet<string> TriggerMaintainedTables = new(StringComparer.Ordinal) { "user_storage" };

    /// <summary>Root entity types with a table, every principal before its dependents (ties by table name).</summary>
    internal static List<IEntityType> DependencyOrder(IModel model)
    {
        var types = model.GetEntityTypes()
            .Where(t => t.BaseType is null && !t.IsOwned() && t.GetTableName() is not null)
            // Derived by database triggers from the copied messages (per-user stored size): the
            // target's triggers rebuild it as the messages arrive, so copying it too would collide.
            .Where(t => t.GetTableName() is not { } name || !TriggerMaintainedTables.Contains(name))
            .OrderBy(t => t.GetTableName(), StringComparer.Ordinal)
            .ToList();
        foreach (var t in types)
        {
            if (t.HasSharedClrType || t.GetProperties().FirstOrDefault(p => p.IsShadowProperty()) is not null)
            {
                throw new NotSupportedException(
                    $"migrate-data copies entities through their CLR properties; {t.DisplayName()} has shadow or shared-type properties. Give it CLR properties.");
            }
        }
        var ordered = new List<IEntityType>();
        var done = new HashSet<IEntityType>();
        while (ordered.Count < types.Count)
        {
            var next = types.FirstOrDefault(t => !done.Contains(t)
                && t.GetForeignKeys().All(fk => fk.PrincipalEntityType.GetRootType() == t || done.Contains(fk.PrincipalEntityType.GetRootType())))
                ?? throw new NotSupportedException("The model has a foreign-key cycle between tables; migrate-data cannot order it.");
            ordered.Add(next);
            done.Add(next);
        }
        return ordered;
    }

    private static Task<Dictionary<string, byte[]>> ScanOf(IEntityType type, AppDbContext db, CancellationToken ct) =>
        (Task<Dictionary<string, byte[]>>)ScanMethod.MakeGenericMethod(type.ClrType).Invoke(null, [type, db, ct])!;

    /// <summary>Every row of one table as primary key → SHA-256 of its canonical content.</summary>
    private static async Task<Dictionary<string, byte[]>> ScanAsync<T>(IEntityType type, AppDbContext db, CancellationToken ct) where T : class
    {
        var rows = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        var row = new RowCodec(type);
        await foreach (var entity in db.Set<T>().AsNoTracking().AsAsyncEnumerable().WithCancellation(ct))
        {
            rows.Add(row.Key(entity), row.Hash(entity));
        }
        return rows;
    }

    private async Task<long> CopyTableAsync<T>(TablePlan plan, CancellationToken ct) where T : class
    {
        var row = new RowCodec(plan.Type);
        var existing = plan.AlreadyThere == 0 ? null : await ScanOf(plan.Type, _target, ct);
        var batch = new List<T>(BatchSize);
        var copied = 0L;
        _target.ChangeTracker.AutoDetectChangesEnabled = false;
        await foreach (var entity in _source.Set<T>().AsNoTracking().AsAsyncEnumerable().WithCancellation(ct))
        {
            if (existing?.ContainsKey(row.Key(entity)) == true)
            {
                continue;
            }
            batch.Add(entity);
            if (batch.Count == BatchSize)
            {
                copied += await FlushAsync(batch, ct);
            }
        }
        copied += await FlushAsync(batch, ct);
        return copied;
    }

    /// <summary>One batch, one transaction: an interrupted run leaves whole batches, and the next run skips them by key.</summary>
    private async Task<int> FlushAsync<T>(List<T> batch, CancellationToken ct) where T : class
    {
        if (batch.Count == 0)
        {
            return 0;
        }
        _target.Set<T>().AddRange(batch);
        await _target.SaveChangesAsync(ct);
        _target.ChangeTracker.Clear();
        var n = batch.Count;
        batch.Clear();
        return n;
    }

    /// <summary>Rows were inserted with their ids; PostgreSQL identity sequences must continue after the largest.</summary>
    private async Task ResetIdentitySequencesAsync(List<IEntityType> tables, CancellationToken ct)
    {
        if (_target.Provider != DatabaseProvider.PostgreSql)
        {
            return;
        }
        foreach (var type in tables)
        {
            var table = type.GetTableName()!;
            var store = StoreObjectIdentifier.Table(table, type.GetSchema());
            foreach (var p in type.GetProperties().Where(p => p.IsPrimaryKey() && p.ValueGenerated == ValueGenerated.OnAdd
                && (p.ClrType == typeof(int) || p.ClrType == typeof(long))))
            {
                var column = p.GetColumnName(store)!;
                var sql = $"SELECT setval(pg_get_serial_sequence('\"{table}\"', '{column}'), COALESCE(MAX(\"{column}\"), 0) + 1, false) FROM \"{table}\" HAVING pg_get_serial_sequence('\"{table}\"', '{column}') IS NOT NULL";
                await _target.Database.ExecuteSqlRawAsync(sql, ct);
            }
        }
    }

    /// <summary>Order-independent checksum of a table: SHA-256 over the sorted row hashes.</summary>
    private static string Checksum(IEnumerable<byte[]> rowHashes)
    {
        var sorted = rowHashes.Select(Convert.ToHexString).Order(StringComparer.Ordinal);
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var h in sorted)
        {
            sha.AppendData(Encoding.ASCII.GetBytes(h));
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    /// <summary>
    /// Canonical text of a row, the same for both providers: timestamps to the microsecond (what
    /// PostgreSQL stores), decimals without trailing zeros, GUIDs in one format.
    /// </summary>
    private sealed class RowCodec(IEntityType type)
    {
        private readonly (string Name, MemberInfo Member)[] _columns = type.GetProperties()
            .OrderBy(p => p.Name, StringComparer.Ordinal)
            .Select(p => (p.Name, (MemberInfo?)p.PropertyInfo ?? p.FieldInfo!))
            .ToArray();

        private readonly MemberInfo[] _key = type.FindPrimaryKey()!.Properties.Select(p => (MemberInfo?)p.PropertyInfo ?? p.FieldInfo!).ToArray();

        public string Key(object entity) => string.Join("|", _key.Select(m => Format(Read(m, entity))));

        public byte[] Hash(object entity)
        {
            var sb = new StringBuilder();
            foreach (var (name, member) in _columns)
            {
                var value = Format(Read(member, entity));
                sb.Append(name).Append('=').Append(value.Length).Append(':').Append(value).Append(';');
            }
            return SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString()));
        }

        private static object? Read(MemberInfo member, object entity) =>
            member is PropertyInfo p ? p.GetValue(entity) : ((FieldInfo)member).GetValue(entity);

        private static string Format(object? value) => value switch
        {
            null => "\u2400",
            string s => s,
            Guid g => g.ToString("N"),
            DateTime d => (DateTime.SpecifyKind(d, DateTimeKind.Utc).Ticks / 10).ToString(CultureInfo.InvariantCulture),
            DateTimeOffset d => (d.UtcTicks / 10).ToString(CultureInfo.InvariantCulture),
            // Dividing by 1.000… drops trailing zeros: 1.50000000 (numeric(18,8)) and 1.5 (SQLite text) agree.
            decimal m => (m / 1.000000000000000000000000000000000m).ToString(CultureInfo.InvariantCulture),
            byte[] b => Convert.ToBase64String(b),
            bool b => b ? "1" : "0",
            Enum e => Convert.ToInt64(e, CultureInfo.InvariantCulture).ToString(CultureInfo.InvariantCulture),
            IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
            _ => value.ToString() ?? "",
        };
    }
}
