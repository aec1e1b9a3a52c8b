using System.Net;
using System.Net.Sockets;

namespace Jackcwf.Testing.Tests;

public sealed class FreePortTests
{
    [Fact]
    public void PortsInARangeStayInItAndAreNotHandedOutTwiceInARow()
    {
        var first = FreePort.InRange(24100, 24110);
        var second = FreePort.InRange(24100, 24110);

        Assert.InRange(first, 24100, 24109);
        Assert.InRange(second, 24100, 24109);
        Assert.NotEqual(first, second);
    }

    [Fact]
    public void APortInUseOrExcludedIsSkipped()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var busy = ((IPEndPoint)taken.LocalEndpoint).Port;

        for (var i = 0; i < 10; i++)
        {
            var port = FreePort.InRange(busy, busy + 4, exclude: busy + 1);
            Assert.InRange(port, busy + 2, busy + 3);
        }
    }
}
