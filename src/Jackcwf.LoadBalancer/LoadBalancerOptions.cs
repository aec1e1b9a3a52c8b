using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Jackcwf.LoadBalancer;

/// <summary>Settings of the balancer itself (YARP's own settings are the <c>ReverseProxy</c> section).</summary>
public sealed class LoadBalancerOptions
{
    public const string Section = "LoadBalancer";

    /// <summary>The YARP cluster the catch-all route sends everything to.</summary>
    public const string ClusterId = "jackcwf";

    // Short aliases, so scripts can write `--Backends=…` or `LB_BACKENDS=…` instead of the section path.
    internal const string BackendsArgument = "Backends";
    internal const string BackendsVariable = "LB_BACKENDS";
    internal const string PortVariable = "LB_PORT";
    internal const string StickyArgument = "Sticky";
    internal const string StickyVariable = "LB_STICKY";

    /// <summary>Comma-separated replica base URLs; when set they replace the destinations of appsettings.json.</summary>
    public string? Backends { get; set; }

    [Range(1, 65535, ErrorMessage = "LoadBalancer:Port (LB_PORT) must be a port number between {1} and {2}.")]
    public int Port { get; set; } = 8000;

    /// <summary>Turns the sticky cookie on without editing the ReverseProxy section.</summary>
    public bool? Sticky { get; set; }

    /// <summary>Bodies of retryable POSTs are buffered up to this size; larger ones are forwarded once.</summary>
    [Range(0, 64L * 1024 * 1024, ErrorMessage = "LoadBalancer:MaxRetryBodyBytes must be between {1} and {2} bytes.")]
    public long MaxRetryBodyBytes { get; set; } = 1024 * 1024;

    /// <summary>Attempts per request, the first included; each retry goes to a replica not tried yet.</summary>
    [Range(1, 10, ErrorMessage = "LoadBalancer:MaxAttempts must be between {1} and {2}.")]
    public int MaxAttempts { get; set; } = 3;

    public IReadOnlyList<Uri> BackendUris() =>
        (Backends ?? "")
            .Split([',', ';', ' '], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(b => Uri.TryCreate(b, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"
                ? uri
                : throw new OptionsValidationException(Section, typeof(LoadBalancerOptions),
                    [$"{BackendsVariable} / --{BackendsArgument} must be comma-separated http(s) URLs (got \"{b}\")."]))
            .ToList();

    internal static void ApplyAliases(LoadBalancerOptions options, IConfiguration configuration)
    {
        options.Backends = NonEmpty(configuration[BackendsArgument]) ?? NonEmpty(configuration[BackendsVariable]) ?? options.Backends;
        if (int.TryParse(configuration[PortVariable], out var port))
        {
            options.Port = port;
        }
        else if (configuration[PortVariable] is { Length: > 0 } badPort)
        {
            throw new OptionsValidationException(Section, typeof(LoadBalancerOptions),
                [$"{PortVariable} must be a port number (got \"{badPort}\")."]);
        }
        if ((NonEmpty(configuration[StickyArgument]) ?? configuration[StickyVariable]) is { Length: > 0 } sticky)
        {
            options.Sticky = bool.TryParse(sticky, out var on) ? on
                : throw new OptionsValidationException(Section, typeof(LoadBalancerOptions),
                    [$"{StickyVariable} / --{StickyArgument} must be true or false (got \"{sticky}\")."]);
        }
    }

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;
}
