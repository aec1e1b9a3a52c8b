using Jackcwf.Api.Configuration;
using Jackcwf.Api.Data;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Backup;

public static class BackupExtensions
{
    public static IHostApplicationBuilder AddBackups(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSettings<BackupOptions>(BackupOptions.Section);
        builder.Services.AddSingleton<IValidateOptions<BackupOptions>, ValidateBackupOptions>();
        builder.Services.AddHostedService<ScheduledSqliteBackup>();
        return builder;
    }

    /// <summary>The folder scheduled backups go to, resolved against the working directory.</summary>
    public static string ResolveDirectory(this BackupOptions options, DatabaseConnection connection) =>
        Path.GetFullPath(options.Directory is { Length: > 0 } dir
            ? dir
            : Path.Combine(Path.GetDirectoryName(Path.GetFullPath(new SqliteConnectionStringBuilder(connection.ConnectionString).DataSource))!, "backups"));
}

/// <summary>
/// Single-node SQLite installs: a backup every <c>BACKUP_INTERVAL_HOURS</c> into <c>BACKUP_DIR</c>,
/// keeping the newest <c>BACKUP_KEEP</c>. The first one runs one interval after start.
/// </summary>
internal sealed partial class ScheduledSqliteBackup(
    DatabaseConnection connection, IOptions<BackupOptions> options, SchemaState schema, TimeProvider time, ILogger<ScheduledSqliteBackup> logger) : BackgroundService
{
    private const string Prefix = "jackcwf-";
    private const string Suffix = ".db";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var o = options.Value;
        if (connection.Provider != DatabaseProvider.Sqlite || o.IntervalHours == 0)
        {
            return;
        }
        var dir = o.ResolveDirectory(connection);
        var interval = TimeSpan.FromHours((double)o.IntervalHours);
        LogScheduled(logger, interval, dir, o.Keep);
        using var timer = new PeriodicTimer(interval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            if (!schema.IsCurrent)
            {
                continue;
            }
            try
            {
                var file = Path.Combine(dir, $"{Prefix}{time.GetUtcNow().UtcDateTime:yyyyMMddTHHmmssfffZ}{Suffix}");
                var result = await SqliteBackup.BackupAsync(connection.ConnectionString, file, stoppingToken);
                var deleted = Prune(dir, o.Keep);
                LogBackedUp(logger, result.Path, result.Bytes, result.Messages, deleted);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogFailed(logger, e.Message);
            }
        }
    }

    /// <summary>Deletes the oldest scheduled backups beyond <paramref name="keep"/> (names sort by time).</summary>
    internal static int Prune(string dir, int keep)
    {
        var old = Directory.GetFiles(dir, Prefix + "*" + Suffix)
            .Select(Path.GetFileName)
            .Where(n => n!.Length == Prefix.Length + "yyyyMMddTHHmmssfffZ".Length + Suffix.Length)
            .Order(StringComparer.Ordinal)
            .SkipLast(keep)
            .ToList();
        foreach (var name in old)
        {
            File.Delete(Path.Combine(dir, name!));
        }
        return old.Count;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Scheduled SQLite backups every {Interval} into {Directory}, keeping {Keep}")]
    private static partial void LogScheduled(ILogger logger, TimeSpan interval, string directory, int keep);

    [LoggerMessage(Level = LogLevel.Information, Message = "SQLite backup written to {Path} ({Bytes} bytes, {Messages} messages); {Deleted} old backup(s) deleted")]
    private static partial void LogBackedUp(ILogger logger, string path, long bytes, long messages, int deleted);

    [LoggerMessage(Level = LogLevel.Error, Message = "Scheduled SQLite backup failed: {Error}")]
    private static partial void LogFailed(ILogger logger, string error);
}

/// <summary>Holds the shared side of <see cref="SqliteDatabaseLock"/> for the life of the service, so <c>restore</c> refuses while it runs.</summary>
internal sealed class SqliteDatabaseLockHolder(DatabaseConnection connection) : IHostedService, IDisposable
{
    private SqliteDatabaseLock? _lock;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var database = new SqliteConnectionStringBuilder(connection.ConnectionString).DataSource;
        _lock = SqliteDatabaseLock.TryAcquireShared(database) ?? throw new InvalidOperationException(
            $"A restore is replacing {database} right now; start the service again once it has finished.");
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose() => _lock?.Dispose();
}
