namespace Jackcwf.Api.Web;

/// <summary>
/// The listener and the HTTP edge (<c>Server</c> section). The shutdown timings of the same section
/// belong to <see cref="ServiceDefaults.ShutdownOptions"/>.
/// </summary>
public sealed class ServerOptions
{
    public const string Section = "Server";
    public const string PortKey = $"{Section}:{nameof(Port)}";
    public const string MetricsPortKey = $"{Section}:{nameof(MetricsPort)}";
    public int Port { get; set; } = 8080;
    /// <summary>When set, <c>/metrics</c> is served on this port only (never on <see cref="Port"/>).</summary>
    public int? MetricsPort { get; set; }
    /// <summary>Serves <c>/openapi</c> and <c>/scalar</c>; unset means on in Development only.</summary>
    public bool? ApiReferenceEnabled { get; set; }
    public int? UvicornWorkers { get; set; }
    public long MaxRequestBodyBytes { get; set; } = 1024 * 1024;
    public string? PublicBaseUrl { get; set; }
    /// <summary>Comma-separated CIDR networks whose X-Forwarded-* headers are believed; see <see cref="ForwardedNetworks"/>.</summary>
    public string? ForwardedTrustedNetworks { get; set; }
    /// <summary>Log every request at Information (an access log); otherwise only failed ones, successful ones at Debug.</summary>
    public bool AccessLog { get; set; }
}
