using System.Net;
using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Web;

/// <summary>The proxies whose X-Forwarded-For/-Proto/-Host are believed (FORWARDED_TRUSTED_NETWORKS).</summary>
public static class ForwardedNetworks
{
    /// <summary>
    /// Loopback, and the private ranges Docker Compose (172.16.0.0/12, 192.168.0.0/16) and Kubernetes
    /// pod and service networks (10.0.0.0/8, fc00::/7) use by default: where Traefik, the load balancer
    /// and the Ingress controller run.
    /// </summary>
    public const string Default = "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7";

    public static (List<System.Net.IPNetwork> Networks, List<string> Invalid) Parse(string? value)
    {
        var networks = new List<System.Net.IPNetwork>();
        var invalid = new List<string>();
        var text = string.IsNullOrWhiteSpace(value) ? Default : value;
        // "none" trusts no proxy: for a replica that faces the internet directly.
        if (text.Trim().Equals("none", StringComparison.OrdinalIgnoreCase))
        {
            return (networks, invalid);
        }
        foreach (var item in text.Split([',', ' '], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (System.Net.IPNetwork.TryParse(item, out var network))
            {
                networks.Add(network);
            }
            else if (IPAddress.TryParse(item, out var address))
            {
                networks.Add(new System.Net.IPNetwork(address, address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128));
            }
            else
            {
                invalid.Add(item);
            }
        }
        return (networks, invalid);
    }
}

internal sealed class ValidateForwardedNetworks : IValidateOptions<ServerOptions>
{
    public ValidateOptionsResult Validate(string? name, ServerOptions options) =>
        ForwardedNetworks.Parse(options.ForwardedTrustedNetworks).Invalid is { Count: > 0 } invalid
            ? ValidateOptionsResult.Fail($"FORWARDED_TRUSTED_NETWORKS must list CIDR networks or addresses separated by commas, or \"none\" (not valid: {string.Join(", ", invalid)}).")
            : ValidateOptionsResult.Success;
}
