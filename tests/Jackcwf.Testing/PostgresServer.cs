using System.Collections.Concurrent;
using System.Globalization;
using Npgsql;

namespace Jackcwf.Testing;

/// <summary>How <see cref="PostgresServer.StopAsync"/> shuts the server down (pg_ctl's modes).</summary>
public enum PostgresStopMode
{
    /// <summary>Disconnect clients, roll back their transactions, then shut down cleanly.</summary>
    Fast,

    /// <summary>Quit at once without a clean shutdown, like a crash; recovery runs on the next start.</summary>
    Immediate,
}

/// <summary>
/// A private PostgreSQL cluster (initdb + pg_ctl in a temp folder, listening on 127.0.0.1 only) for
/// tests that stop and restart the database. Tests that only need a database use <see cref="TestPostgres"/>.
/// </summary>
public sealed class PostgresServer : IAsyncDisposable
{
    private static readonly ConcurrentDictionary<PostgresServer, byte> Live = new();
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(60);

    private readonly string _binDirectory;

    static PostgresServer()
    {
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            foreach (var server in Live.Keys)
            {
                server.SignalPostmaster(Signals.SigQuit);
            }
        };
    }

    private PostgresServer(string binDirectory, string directory, int port)
    {
        _binDirectory = binDirectory;
        Directory = directory;
        Port = port;
    }

    public int Port { get; private set; }

    /// <summary>The temp folder holding <c>data/</c>, the log and the socket; deleted on dispose.</summary>
    public string Directory { get; }

    public string DataDirectory => Path.Combine(Directory, "data");

    public string LogFile => Path.Combine(Directory, "postgres.log");

    /// <summary>Npgsql connection string of the <c>postgres</c> database as superuser <c>postgres</c> (no password).</summary>
    public string ConnectionString => ConnectionStringFor("postgres");

    /// <summary>The same as a <c>postgresql://</c> URL.</summary>
    public string Url => UrlFor("postgres");

    /// <summary>Whether the postmaster is running (its pid file exists and the process is alive).</summary>
    public bool IsRunning => Pid is not null;

    /// <summary>The postmaster's process id from <c>postmaster.pid</c>, or <c>null</c> when stopped.</summary>
    public int? Pid
    {
        get
        {
            var pidFile = Path.Combine(DataDirectory, "postmaster.pid");
            try
            {
                var firstLine = File.ReadLines(pidFile).FirstOrDefault();
                return int.TryParse(firstLine, NumberStyles.Integer, CultureInfo.InvariantCulture, out var pid) && Signals.IsAlive(pid)
                    ? pid
                    : null;
            }
            catch (IOException)
            {
                return null;
            }
        }
    }

    /// <summary>The server's log so far (useful in assertion messages).</summary>
    public string Logs => File.Exists(LogFile) ? File.ReadAllText(LogFile) : "";

    /// <summary>Initialises a cluster in a new temp folder and starts it on <paramref name="port"/> (0 = a free port below the ephemeral range).</summary>
    public static async Task<PostgresServer> StartAsync(int port = 0, CancellationToken cancellationToken = default)
    {
        var bin = FindBinDirectory();
        var directory = System.IO.Directory.CreateTempSubdirectory("jackcwf-pg-").FullName;
        var server = new PostgresServer(bin, directory, port == 0 ? FreePort.GetReusable() : port);
        try
        {
            if (Environment.IsPrivilegedProcess)
            {
                // initdb refuses to run as root; the cluster belongs to the postgres system user.
                await ExternalCommand.RunCheckedAsync("chown", ["postgres:postgres", directory], CommandTimeout, cancellationToken);
            }

            await server.RunAsPostgresAsync(
                Path.Combine(bin, "initdb"),
                ["-D", server.DataDirectory, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"],
                cancellationToken);
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    await server.StartAsync(cancellationToken);
                    break;
                }
                catch (InvalidOperationException) when (port == 0 && attempt < 3 && !FreePort.IsFree(server.Port))
                {
                    // Someone took the port between the check and the start: try another one.
                    server.Port = FreePort.GetReusable();
                }
            }

            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    public string ConnectionStringFor(string database) => new NpgsqlConnectionStringBuilder
    {
        Host = "127.0.0.1",
        Port = Port,
        Username = "postgres",
        Database = database,
    }.ConnectionString;

    public string UrlFor(string database) => $"postgresql://postgres@127.0.0.1:{Port}/{database}";

    /// <summary>Starts the stopped server again on the same port and data (returns when it accepts connections).</summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        var options = string.Join(' ',
            $"-p {Port}",
            "-c listen_addresses=127.0.0.1",
            $"-k {Directory}",
            // Durability is pointless for throwaway data and costs seconds on a shared disk.
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            "-c max_connections=200");
        await RunAsPostgresAsync(
            Path.Combine(_binDirectory, "pg_ctl"),
            ["-D", DataDirectory, "-l", LogFile, "-w", "-t", "60", "-o", options, "start"],
            cancellationToken);
        Live[this] = 0;
    }

    /// <summary>Stops the server (pg_ctl signals the postmaster's pid and waits until it is gone).</summary>
    public async Task StopAsync(PostgresStopMode mode = PostgresStopMode.Fast, CancellationToken cancellationToken = default)
    {
        if (!IsRunning)
        {
            return;
        }

        await RunAsPostgresAsync(
            Path.Combine(_binDirectory, "pg_ctl"),
            ["-D", DataDirectory, "-m", mode == PostgresStopMode.Fast ? "fast" : "immediate", "-w", "-t", "60", "stop"],
            cancellationToken);
        Live.TryRemove(this, out _);
    }

    public async Task RestartAsync(PostgresStopMode mode = PostgresStopMode.Fast, CancellationToken cancellationToken = default)
    {
        await StopAsync(mode, cancellationToken);
        await StartAsync(cancellationToken);
    }

    /// <summary>Creates a uniquely named database on this server; disposing it drops it.</summary>
    public Task<TestDatabase> CreateDatabaseAsync(string? namePrefix = null, CancellationToken cancellationToken = default) =>
        TestDatabase.CreateAsync(ConnectionString, namePrefix, cancellationToken);

    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync(PostgresStopMode.Immediate);
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException)
        {
            SignalPostmaster(Signals.SigKill);
        }

        Live.TryRemove(this, out _);
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // A backend still exiting holds a file; the temp folder is left for the OS to clean.
        }
        catch (UnauthorizedAccessException)
        {
            // As above.
        }
    }

    private void SignalPostmaster(int signal)
    {
        if (Pid is { } pid)
        {
            Signals.Send(pid, signal);
        }
    }

    private async Task RunAsPostgresAsync(string tool, IReadOnlyList<string> arguments, CancellationToken cancellationToken)
    {
        var (exitCode, output) = Environment.IsPrivilegedProcess
            ? await ExternalCommand.RunAsync("runuser", ["-u", "postgres", "--", tool, .. arguments], CommandTimeout, cancellationToken)
            : await ExternalCommand.RunAsync(tool, arguments, CommandTimeout, cancellationToken);
        if (exitCode != 0)
        {
            throw new InvalidOperationException(
                $"{Path.GetFileName(tool)} {string.Join(' ', arguments)} failed with exit code {exitCode}:\n{output}\nServer log:\n{Logs}");
        }
    }

    private static string FindBinDirectory()
    {
        const string root = "/usr/lib/postgresql";
        var bin = System.IO.Directory.Exists(root)
            ? System.IO.Directory.GetDirectories(root)
                .Select(d => Path.Combine(d, "bin"))
                .Where(d => File.Exists(Path.Combine(d, "initdb")) && File.Exists(Path.Combine(d, "pg_ctl")))
                .OrderByDescending(d => int.TryParse(Path.GetFileName(Path.GetDirectoryName(d)), out var v) ? v : 0)
                .FirstOrDefault()
            : null;
        return bin ?? throw new InvalidOperationException(
            "PostgreSQL server binaries (initdb, pg_ctl) were not found under /usr/lib/postgresql/*/bin: install the postgresql package (./test.sh installs it).");
    }
}
