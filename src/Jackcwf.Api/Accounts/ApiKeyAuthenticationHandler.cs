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
    /// <summary>Set (to the client's address bucket) when the address's unknown-key lockout is left to the request-limit check.</summary>
    public const string LockoutPendingItem = "jackcwf.apikey.lockout";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var header = Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer " + KeyPrefix, StringComparison.Ordinal))
        {
            return AuthenticateResult.NoResult();
        }
        var key = header.AsSpan("Bearer ".Length).Trim();
        var client = AuthRoutes.ClientKey(Context);
        var hash = key.Length > 200 ? null : ApiKeysApi.Hash(key);
        if (hash is not null && cache.HoldsKey(hash))
        {
            // A key this replica holds as valid needs no lookup to protect: the address's lockout is checked
            // with the request limits, in the same Redis call (UseAccessAndRateLimits), instead of one more here.
            Context.Items[LockoutPendingItem] = client;
        }
        else if (await throttle.CheckApiKeyFailuresAsync(client) is { } wait)
        {
            // Guessing keys: no lookup at all until the window has room again.
            Context.Items[ThrottledItem] = throttle.ApiKeyFailuresRefusal(wait);
            return AuthenticateResult.Fail("Too many unknown API keys from this address.");
        }
        if (hash is null || await cache.FindKeyAsync(hash) is not { } owner
            || await cache.GetAsync(owner.UserId) is not { } user)
        {
            metrics.Login("api_key", success: false);
            await throttle.RecordApiKeyFailureAsync(client);
            return AuthenticateResult.Fail("Unknown or revoked API key.");
        }
        usage.Touch(owner.KeyId);
        return AuthenticateResult.Success(new AuthenticationTicket(ApiKeyPrincipal.For(owner, user, SchemeName), SchemeName));
    }
}
