using Yarp.ReverseProxy.Forwarder;

namespace Jackcwf.LoadBalancer;

/// <summary>
/// YARP's client with a short connect timeout: a replica that does not accept a connection within two
/// seconds is treated like a refused one (retried elsewhere) instead of holding the client for 15 s.
/// </summary>
internal sealed class LoadBalancerHttpClientFactory(ILogger<ForwarderHttpClientFactory> logger) : ForwarderHttpClientFactory(logger)
{
    protected override void ConfigureHandler(ForwarderHttpClientContext context, SocketsHttpHandler handler)
    {
        base.ConfigureHandler(context, handler);
        handler.ConnectTimeout = TimeSpan.FromSeconds(2);
        // Replicas that restart get new processes on the same port; do not keep idle sockets to the old one.
        handler.PooledConnectionIdleTimeout = TimeSpan.FromSeconds(15);
    }
}
