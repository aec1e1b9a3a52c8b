using Microsoft.Data.Sqlite;

namespace Jackcwf.Api.Backup;

/// <summary>
/// The lock file beside the SQLite database (<c>jackcwf.db.lock</c>): every service process holds a
/// shared lock on it while it runs; <c>restore</c> needs it exclusively. SQLite's own locks cannot
/// say this: in WAL mode an idle service holds none.
/// </summary>
public sealed class SqliteDatabaseLock : IDisposable
{
    private readonly FileStream _file;

    private SqliteDatabaseLock(FileStream file) => _file = file;

    public static string PathFor(string database) => Path.GetFullPath(database) + ".lock";

    /// <summary>.NET on Unix takes flock(LOCK_SH) for a shared FileShare and flock(LOCK_EX) for FileShare.None.</summary>
    public static SqliteDatabaseLock? TryAcquireShared(string database) => TryOpen(database, FileShare.ReadWrite);

    public static SqliteDatabaseLock? TryAcquireExclusive(string database) => TryOpen(database, FileShare.None);

    private static SqliteDatabaseLock? TryOpen(string database, FileShare share)
    {
        var path = PathFor(database);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        try
        {
            return new SqliteDatabaseLock(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, share));
        }
        catch (IOException)
        {
            return null;
        }
    }

    public void Dispose() => _file.Dispose();
}
