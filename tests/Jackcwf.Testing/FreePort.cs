using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;

namespace Jackcwf.Testing;

/// <summary>Free TCP ports on 127.0.0.1.</summary>
public static class FreePort
{
    // Ports from the kernel's ephemeral range (32768-60999 on Linux) can be taken by any outgoing
    // connection while a server is stopped, so restartable servers get a port below that range; the
    // 20000s are left to tests and scripts that use fixed ports.
    private const int ReusableLow = 12000;
    private const int ReusableHigh = 20000;
    private static readonly ConcurrentDictionary<(int Low, int High), StrongBox<int>> RangeCursors = new();

    /// <summary>A port the kernel just handed out; fine for a server that binds it right away and never restarts.</summary>
    public static int Get()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>
    /// A free port below the ephemeral range, for servers that are stopped and started again on the
    /// same port (an outgoing connection can never be given it in between).
    /// </summary>
    public static int GetReusable()
    {
        for (var attempt = 0; attempt < 200; attempt++)
        {
            var port = Random.Shared.Next(ReusableLow, ReusableHigh);
            if (IsFree(port))
            {
                return port;
            }
        }

        throw new InvalidOperationException($"No free port found between {ReusableLow} and {ReusableHigh}.");
    }

    /// <summary>
    /// A free port in [<paramref name="low"/>, <paramref name="high"/>), for a test project that keeps to its own
    /// block of ports. Successive calls walk the block from a random start, so two services started one after the
    /// other never get the same port even before the first has bound it.
    /// </summary>
    public static int InRange(int low, int high, int? exclude = null)
    {
        var size = high - low;
        var cursor = RangeCursors.GetOrAdd((low, high), _ => new StrongBox<int>(Random.Shared.Next(0, Math.Min(200, size))));
        for (var attempt = 0; attempt < size; attempt++)
        {
            var port = low + (int)((uint)Interlocked.Increment(ref cursor.Value) % (uint)size);
            if (port != exclude && IsFree(port))
            {
                return port;
            }
        }

        throw new InvalidOperationException($"No free port between {low} and {high - 1}.");
    }

    /// <summary>Whether nothing listens on <paramref name="port"/> of 127.0.0.1 right now.</summary>
    public static bool IsFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
