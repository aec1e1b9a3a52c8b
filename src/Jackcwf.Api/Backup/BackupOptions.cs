using Jackcwf.Api.Configuration;
using Jackcwf.Api.Data;
using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Backup;

public sealed class BackupOptions
{
    public const string Section = "Backup";

    /// <summary>Hours between scheduled SQLite backups; 0 turns them off.</summary>
    public decimal IntervalHours { get; set; } = 24;

    /// <summary>How many scheduled backups to keep (the oldest beyond this are deleted).</summary>
    public int Keep { get; set; } = 7;

    /// <summary>Where scheduled backups go; unset means a <c>backups</c> folder beside the database.</summary>
    public string? Directory { get; set; }
}

/// <summary>Only matters on SQLite (PostgreSQL is backed up by pgBackRest); then the folder must be writable.</summary>
internal sealed class ValidateBackupOptions(DatabaseConnection connection) : IValidateOptions<BackupOptions>
{
    public ValidateOptionsResult Validate(string? name, BackupOptions options)
    {
        if (connection.Provider != DatabaseProvider.Sqlite || options.IntervalHours == 0)
        {
            return ValidateOptionsResult.Success;
        }
        if (options.IntervalHours * 3600 < 1)
        {
            return ValidateOptionsResult.Fail($"{EnvironmentVariables.NameOf("Backup:IntervalHours")} must be 0 (off) or at least one second ({1m / 3600:0.######} hours).");
        }
        var dir = options.ResolveDirectory(connection);
        try
        {
            Directory.CreateDirectory(dir);
            var probe = Path.Combine(dir, $".write-test-{Environment.ProcessId}");
            File.WriteAllText(probe, "");
            File.Delete(probe);
            return ValidateOptionsResult.Success;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            return ValidateOptionsResult.Fail(
                $"{EnvironmentVariables.NameOf("Backup:Directory")} \"{dir}\" is not a writable folder ({e.GetType().Name}); point it at one, or set BACKUP_INTERVAL_HOURS=0 to turn scheduled backups off.");
        }
    }
}
