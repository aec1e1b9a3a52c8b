using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;
using System.Text;

namespace Jackcwf.Testing;

/// <summary>
/// A private <c>redis-server</c> child process on 127.0.0.1 without persistence, for tests that stop
/// and restart Redis. Tests that only need a Redis use <see cref="TestRedis"/>.
/// </summary>
public sealed class RedisServer : IAsyncDisposable
{
    private static readonly ConcurrentDictionary<RedisServer, byte> Live = new();

    private readonly LogCapture _log = new();
    private Process? _process;

    static RedisServer()
    {
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            foreach (var server in Live.Keys)
            {
                server.Kill();
            }
        };
    }

    private RedisServer(int port, string directory)
    {
        Port = port;
        Directory = directory;
    }

    public int Port { get; private set; }

    /// <summary>Working folder of the server; deleted on dispose.</summary>
    public string Directory { get; }

    /// <summary>StackExchange.Redis configuration string: <c>127.0.0.1:{port}</c>.</summary>
    public string Configuration => $"127.0.0.1:{Port}";

    /// <summary><c>redis://127.0.0.1:{port}</c>, the form <c>REDIS_URL</c> takes.</summary>
    public string Url => $"redis://127.0.0.1:{Port}";

    public int? Pid => _process is { HasExited: false } p ? p.Id : null;

    public bool IsRunning => Pid is not null;

    /// <summary>What the server printed, across restarts.</summary>
    public string Logs => _log.Text;

    /// <summary>Starts <c>redis-server</c> on <paramref name="port"/> (0 = a free port below the ephemeral range) and waits for PONG.</summary>
    public static async Task<RedisServer> StartAsync(int port = 0, CancellationToken cancellationToken = default)
    {
        var server = new RedisServer(port == 0 ? FreePort.GetReusable() : port, System.IO.Directory.CreateTempSubdirectory("jackcwf-redis-").FullName);
        try
        {
            await server.StartAsync(cancellationToken);
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts the server again on the same port (its data is gone: there is no persistence).</summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (IsRunning)
        {
            return;
        }

        var start = new ProcessStartInfo("redis-server")
        {
            WorkingDirectory = Directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[]
                 {
                     "--port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
                     "--bind", "127.0.0.1",
                     "--save", "",
                     "--appendonly", "no",
                     "--dir", Directory,
                     "--databases", "64",
                 })
        {
            start.ArgumentList.Add(argument);
        }

        var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                _log.Add(e.Data);
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                _log.Add(e.Data);
            }
        };
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException(
                "redis-server could not be started: install the redis-server package (./test.sh installs what tests/apt-packages.txt lists).", e);
        }

        _process?.Dispose();
        _process = process;
        Live[this] = 0;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var stopwatch = Stopwatch.StartNew();
        while (!await PingAsync(cancellationToken))
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"redis-server exited with code {process.ExitCode} on port {Port}:\n{Logs}");
            }

            if (stopwatch.Elapsed > TimeSpan.FromSeconds(30))
            {
                Kill();
                throw new TimeoutException($"redis-server did not answer PING on port {Port} within 30 s:\n{Logs}");
            }

            await Task.Delay(25, cancellationToken);
        }
    }

    /// <summary>SIGTERM to the server's pid, then waits for it to exit.</summary>
    public async Task StopAsync(TimeSpan? timeout = null)
    {
        var process = _process;
        if (process is null || process.HasExited)
        {
            return;
        }

        Signals.Send(process.Id, Signals.SigTerm);
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(15));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            Kill();
            throw new TimeoutException($"redis-server did not exit within {timeout} of SIGTERM; it was killed.\n{Logs}");
        }

        Live.TryRemove(this, out _);
    }

    /// <summary>SIGKILL, like a crash; waits until the process is gone.</summary>
    public void Kill()
    {
        var process = _process;
        if (process is null)
        {
            return;
        }

        try
        {
            if (!process.HasExited)
            {
                Signals.Send(process.Id, Signals.SigKill);
            }

            process.WaitForExit(TimeSpan.FromSeconds(10));
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }

        Live.TryRemove(this, out _);
    }

    public async Task RestartAsync(CancellationToken cancellationToken = default)
    {
        await StopAsync();
        await StartAsync(cancellationToken);
    }

    /// <summary>Reserves an empty logical database on this server, like <see cref="TestRedis.CreateDatabaseAsync(CancellationToken)"/>.</summary>
    public Task<TestRedisDatabase> CreateDatabaseAsync(CancellationToken cancellationToken = default) =>
        TestRedis.CreateDatabaseAsync(Configuration, cancellationToken);

    /// <summary>Whether the server answers <c>PING</c> right now.</summary>
    public async Task<bool> PingAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            using var client = new TcpClient();
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            cts.CancelAfter(TimeSpan.FromSeconds(2));
            await client.ConnectAsync("127.0.0.1", Port, cts.Token);
            var stream = client.GetStream();
            await stream.WriteAsync("PING\r\n"u8.ToArray(), cts.Token);
            var buffer = new byte[16];
            var read = await stream.ReadAsync(buffer, cts.Token);
            return Encoding.ASCII.GetString(buffer, 0, read).StartsWith("+PONG", StringComparison.Ordinal);
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        Kill();
        if (_process is not null)
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            try
            {
                await _process.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                // Output readers still draining; nothing depends on them now.
            }

            _process.Dispose();
        }

        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // Left for the OS to clean.
        }
    }
}
