using System.Security.Claims;
using System.Text.Encodings.Web;
using Jackcwf.Api.Data;
using Jackcwf.Api.Telemetry;
using Microsoft.AspNetCore.Authentication;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Accounts;

/// <summary>Authenticates <c>Authorization: Bearer jk-…</c> personal API keys.</summary>
public sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder,
    UserAccessCache cache, ApiKeyUsageTracker usage, JackcwfMetrics metrics, AuthThrottle throttle)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";
    public const string KeyPrefix = "jk-";
    /// <summary>Set when the caller's address sent too many unknown keys; the access middleware answers 429.</summary>
    public const string ThrottledItem = "jackcwf.apikey.throttled";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var header = Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer " + KeyPrefix, StringComparison.Ordinal))
        {
            return AuthenticateResult.NoResult();
        }
        var key = header["Bearer ".Length..].Trim();
        var client = AuthRoutes.ClientKey(Context);
        if (await throttle.CheckApiKeyFailuresAsync(client) is { } wait)
        {
            // Guessing keys: no lookup at all until the window has room again.
            metrics.LimitRefused("api_key_failures");
            Context.Items[ThrottledItem] = new Limits.LimitRefusal("api_key_failures", wait, "Too many unknown API keys",
                $"This address sent too many unknown API keys. Try again in {Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds))} s.");
            return AuthenticateResult.Fail("Too many unknown API keys from this address.");
        }
        if (key.Length > 200 || await cache.FindKeyAsync(ApiKeysApi.Hash(key)) is not { } owner
            || await cache.GetAsync(owner.UserId) is not { } user)
        {
            metrics.Login("api_key", success: false);
            await throttle.RecordApiKeyFailureAsync(client);
            return AuthenticateResult.Fail("Unknown or revoked API key.");
        }
        usage.Touch(owner.KeyId);
        var claims = new List<Claim>
        {
            new(ClaimTypes.NameIdentifier, user.UserId.ToString()),
            new(ClaimTypes.Name, user.Email),
            new(ClaimTypes.Email, user.Email),
            new(ApiKeyClaims.KeyId, owner.KeyId.ToString()),
        };
        claims.AddRange(user.Roles.Select(r => new Claim(ClaimTypes.Role, r)));
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(new ClaimsIdentity(claims, SchemeName)), SchemeName));
    }
}
