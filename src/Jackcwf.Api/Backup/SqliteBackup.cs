using Jackcwf.Api.Data;
using Microsoft.Data.Sqlite;

namespace Jackcwf.Api.Backup;

/// <summary>What a finished SQLite backup or restore produced.</summary>
public sealed record SqliteCopyResult(string Path, long Bytes, long Messages);

/// <summary>A backup or restore that must not go ahead; the message says why and what to do.</summary>
public sealed class BackupRefusedException(string message) : Exception(message);

/// <summary>
/// Online backup and offline restore of the SQLite database through SQLite's backup API
/// (<c>sqlite3_backup_*</c>, exposed as <see cref="SqliteConnection.BackupDatabase(SqliteConnection)"/>): the copy is
/// one consistent snapshot read inside a transaction, so writers keep going while it runs. A file
/// copy of a live WAL database can miss committed pages or tear a page, which is why none is used.
/// </summary>
public static class SqliteBackup
{
    public static async Task<SqliteCopyResult> BackupAsync(string databaseConnectionString, string destination, CancellationToken ct)
    {
        var source = new SqliteConnectionStringBuilder(databaseConnectionString) { Mode = SqliteOpenMode.ReadWrite, Pooling = false };
        if (!File.Exists(source.DataSource))
        {
            throw new BackupRefusedException($"There is no SQLite database at {source.DataSource}: check DATABASE_URL (or the working directory, for the default ./data/jackcwf.db).");
        }
        var target = Path.GetFullPath(destination);
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        // Written beside the target and renamed at the end: a crash never leaves a half file under the final name.
        var partial = target + ".partial";
        File.Delete(partial);
        try
        {
            await using (var from = new SqliteConnection(source.ConnectionString))
            {
                await from.OpenAsync(ct);
                await using var to = new SqliteConnection(FileConnectionString(partial));
                await to.OpenAsync(ct);
                // Reads the whole database in one step under one read transaction: a single snapshot.
                await Task.Run(() => from.BackupDatabase(to), ct);
                // The copy inherits WAL mode from the live file; a backup is one self-contained file.
                await ExecuteAsync(to, "PRAGMA journal_mode=DELETE", ct);
                await RequireIntactAsync(to, partial, ct);
            }
            if (!OperatingSystem.IsWindows())
            {
                // A backup holds password hashes, API key hashes and the Data Protection key ring.
                File.SetUnixFileMode(partial, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }
            File.Move(partial, target, overwrite: true);
        }
        finally
        {
            File.Delete(partial);
        }
        return new SqliteCopyResult(target, new FileInfo(target).Length, await CountMessagesAsync(target, ct));
    }

    /// <summary>
    /// Replaces the database with <paramref name="backupFile"/> after checking the backup, while
    /// holding the database's lock file so a service cannot start meanwhile. The database it
    /// replaces is kept beside it as <c>*.before-restore-*.db</c>.
    /// </summary>
    public static async Task<(SqliteCopyResult Restored, string? Previous)> RestoreAsync(string databaseConnectionString, string backupFile, CancellationToken ct)
    {
        var backup = Path.GetFullPath(backupFile);
        if (!File.Exists(backup))
        {
            throw new BackupRefusedException($"The backup file {backup} does not exist.");
        }
        await CheckBackupAsync(backup, ct);

        var database = Path.GetFullPath(new SqliteConnectionStringBuilder(databaseConnectionString).DataSource);
        using var exclusive = SqliteDatabaseLock.TryAcquireExclusive(database) ?? throw new BackupRefusedException(
            $"The service is running on {database} (it holds {SqliteDatabaseLock.PathFor(database)}): stop it, then run restore again. Nothing was changed.");

        string? previous = null;
        if (File.Exists(database))
        {
            previous = $"{database}.before-restore-{DateTime.UtcNow:yyyyMMddTHHmmssZ}.db";
            await BackupAsync(FileConnectionString(database), previous, ct);
        }
        var incoming = database + ".restoring";
        File.Delete(incoming);
        try
        {
            await using (var from = new SqliteConnection(FileConnectionString(backup, SqliteOpenMode.ReadOnly)))
            {
                await from.OpenAsync(ct);
                await using var to = new SqliteConnection(FileConnectionString(incoming));
                await to.OpenAsync(ct);
                await Task.Run(() => from.BackupDatabase(to), ct);
                await ExecuteAsync(to, "PRAGMA journal_mode=WAL", ct);
                await RequireIntactAsync(to, incoming, ct);
            }
            // The old database's WAL and index belong to the file being replaced; nobody has it open (we hold the lock).
            File.Delete(database + "-wal");
            File.Delete(database + "-shm");
            File.Move(incoming, database, overwrite: true);
        }
        finally
        {
            File.Delete(incoming);
        }
        return (new SqliteCopyResult(database, new FileInfo(database).Length, await CountMessagesAsync(database, ct)), previous);
    }

    /// <summary>Refuses a file that is not an intact Jackcwf database, before anything is replaced.</summary>
    private static async Task CheckBackupAsync(string backup, CancellationToken ct)
    {
        try
        {
            await using var connection = new SqliteConnection(FileConnectionString(backup, SqliteOpenMode.ReadOnly));
            await connection.OpenAsync(ct);
            await RequireIntactAsync(connection, backup, ct);
            await using var command = connection.CreateCommand();
            command.CommandText = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '__EFMigrationsHistory'";
            if (Convert.ToInt64(await command.ExecuteScalarAsync(ct), System.Globalization.CultureInfo.InvariantCulture) == 0)
            {
                throw new BackupRefusedException($"{backup} is an SQLite file but not a Jackcwf database (it has no __EFMigrationsHistory table). Nothing was changed.");
            }
        }
        catch (SqliteException e)
        {
            throw new BackupRefusedException($"{backup} is not a readable SQLite database ({e.Message}). Nothing was changed.");
        }
    }

    private static async Task RequireIntactAsync(SqliteConnection connection, string path, CancellationToken ct)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA integrity_check";
        var problems = new List<string>();
        await using (var reader = await command.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct))
            {
                problems.Add(reader.GetString(0));
            }
        }
        if (problems is not ["ok"])
        {
            throw new BackupRefusedException($"PRAGMA integrity_check failed on {path}: {string.Join("; ", problems.Take(5))}. Nothing was changed.");
        }
    }

    private static async Task<long> CountMessagesAsync(string path, CancellationToken ct)
    {
        await using var connection = new SqliteConnection(FileConnectionString(path, SqliteOpenMode.ReadOnly));
        await connection.OpenAsync(ct);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'messages'";
        if (Convert.ToInt64(await command.ExecuteScalarAsync(ct), System.Globalization.CultureInfo.InvariantCulture) == 0)
        {
            return 0;
        }
        command.CommandText = "SELECT count(*) FROM messages";
        return Convert.ToInt64(await command.ExecuteScalarAsync(ct), System.Globalization.CultureInfo.InvariantCulture);
    }

    private static async Task ExecuteAsync(SqliteConnection connection, string sql, CancellationToken ct)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync(ct);
    }

    private static string FileConnectionString(string path, SqliteOpenMode mode = SqliteOpenMode.ReadWriteCreate) =>
        new SqliteConnectionStringBuilder { DataSource = path, Mode = mode, Pooling = false, DefaultTimeout = 30 }.ConnectionString;

    /// <summary>The SQLite file the service uses, or a refusal naming what to do for PostgreSQL.</summary>
    public static string SqliteConnectionStringOrThrow(DatabaseConnection connection, string command) =>
        connection.Provider == DatabaseProvider.Sqlite
            ? connection.ConnectionString
            : throw new BackupRefusedException(
                $"DATABASE_URL points at PostgreSQL; `{command}` is for the SQLite database. Back up PostgreSQL with pgBackRest: "
                + "deployment/scripts/deploy-ha.sh --platform local --backup (see docs/deployment/DEPLOYMENT_RECOVERY_GUIDE.md).");
}
