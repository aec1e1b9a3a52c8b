using System.Net;
using System.Net.Sockets;

namespace Jackcwf.Testing;

/// <summary>Free TCP ports on 127.0.0.1.</summary>
public static class FreePort
{
    // Ports from the kernel's ephemeral range (32768-60999 on Linux) can be taken by any outgoing
    // connection while a server is stopped, so restartable servers get a port below that range; the
    // 20000s are left to tests and scripts that use fixed ports.
    private const int ReusableLow = 12000;
    private const int ReusableHigh = 20000;

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
