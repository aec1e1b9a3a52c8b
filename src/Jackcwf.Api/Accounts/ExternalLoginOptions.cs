using Jackcwf.Api.Configuration;
using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Accounts;

/// <summary>Sign-in with one external OpenID Connect provider (Keycloak, Entra ID, Google…), set by the OIDC_* variables.</summary>
public sealed class ExternalLoginOptions
{
    public const string Section = "Oidc";
    public const string DefaultCallbackPath = "/api/auth/external/oidc/callback";
    public const string DefaultScopes = "openid profile email";

    public string? Authority { get; set; }
    public string? ClientId { get; set; }
    public string? ClientSecret { get; set; }
    public string? DisplayName { get; set; }
    public string? Scopes { get; set; }
    public string? CallbackPath { get; set; }

    public bool IsEnabled => !string.IsNullOrWhiteSpace(Authority) && !string.IsNullOrWhiteSpace(ClientId);

    public string EffectiveCallbackPath => string.IsNullOrWhiteSpace(CallbackPath) ? DefaultCallbackPath : CallbackPath.Trim();

    public string EffectiveDisplayName => string.IsNullOrWhiteSpace(DisplayName) ? "Single sign-on" : DisplayName.Trim();

    /// <summary>The requested scopes; <c>openid</c> is always among them (without it there is no ID token).</summary>
    public IReadOnlyList<string> EffectiveScopes =>
        ["openid", .. (string.IsNullOrWhiteSpace(Scopes) ? DefaultScopes : Scopes)
            .Split([' ', ','], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(s => s != "openid")
            .Distinct(StringComparer.Ordinal)];
}

internal sealed class ValidateExternalLoginOptions : IValidateOptions<ExternalLoginOptions>
{
    public ValidateOptionsResult Validate(string? name, ExternalLoginOptions o)
    {
        var errors = new List<string>();
        var authority = EnvironmentVariables.NameOf($"{ExternalLoginOptions.Section}:{nameof(o.Authority)}");
        var clientId = EnvironmentVariables.NameOf($"{ExternalLoginOptions.Section}:{nameof(o.ClientId)}");
        if (string.IsNullOrWhiteSpace(o.Authority) != string.IsNullOrWhiteSpace(o.ClientId))
        {
            errors.Add($"{authority} and {clientId} must be set together to enable OpenID Connect sign-in (only one is set).");
        }
        if (!string.IsNullOrWhiteSpace(o.Authority)
            && (!Uri.TryCreate(o.Authority, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp)))
        {
            errors.Add($"{authority} must be the provider's absolute http(s) issuer URL.");
        }
        var path = o.EffectiveCallbackPath;
        if (!path.StartsWith('/') || path.StartsWith("//", StringComparison.Ordinal) || path.Contains('?') || path.Contains('#'))
        {
            errors.Add($"{EnvironmentVariables.NameOf($"{ExternalLoginOptions.Section}:{nameof(o.CallbackPath)}")} must be a path starting with / (got \"{path}\").");
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
