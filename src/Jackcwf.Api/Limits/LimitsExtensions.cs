using System.Security.Claims;
using Jackcwf.Api.Accounts;
using Jackcwf.Api.Configuration;
using Jackcwf.Api.ErrorHandling;
using Jackcwf.Api.Web;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Jackcwf.Api.Limits;

public static class LimitsExtensions
{
    public static IHostApplicationBuilder AddLimits(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSettings<LimitsOptions>(LimitsOptions.Section);
        // This process's counters; AddBackplane replaces them with Redis ones every replica shares (in either order).
        builder.Services.TryAddSingleton<InProcessLimitStore>();
        builder.Services.TryAddSingleton<ILimitStore>(sp => sp.GetRequiredService<InProcessLimitStore>());
        builder.Services.AddSingleton<LimitGuard>();
        return builder;
    }

    /// <summary>
    /// After authentication: answers 429 to an address that sent too many unknown API keys, refuses
    /// disabled accounts, revoked keys and ended sessions (from a cache with cross-replica invalidation,
    /// not a database read per request), keeps API keys to the routes they are for, then applies the
    /// per-minute limits.
    /// </summary>
    public static WebApplication UseAccessAndRateLimits(this WebApplication app)
    {
        app.Use(async (ctx, next) =>
        {
            if (ctx.Items[ApiKeyAuthenticationHandler.ThrottledItem] is LimitRefusal throttled)
            {
                await ErrorResponses.WriteRefusalAsync(ctx, throttled);
                return;
            }
            var path = ctx.Request.Path;
            if (ctx.User.Identity?.IsAuthenticated != true || !(path.StartsWithSegments("/api") || path.StartsWithSegments("/v1")))
            {
                await next(ctx);
                return;
            }
            var userId = ctx.User.Id();
            var access = ctx.RequestServices.GetRequiredService<UserAccessCache>();
            // Disabled accounts are refused everywhere, the account routes (/api/auth/manage…) included.
            if (!await access.IsAllowedAsync(ctx.User))
            {
                await ErrorResponses.WriteAsync(ctx, 401, "account_disabled", "Access revoked",
                    "This account is disabled, this key was revoked, or this session was signed out.");
                return;
            }
            if (ctx.User.ApiKeyId() is not null && !ApiKeyScope.Allows(ctx.GetEndpoint()))
            {
                await ErrorResponses.WriteAsync(ctx, 403, "session_required", "Sign in to do this",
                    "API keys work on /v1 and the conversations API only; account, key and administration routes need a signed-in session.");
                return;
            }
            // /v1/chat/completions and a chat message count the request in the same store call that admits it
            // (GatewayCalls, ChatTurns).
            if (path.StartsWithSegments("/api/auth"))
            {
                await next(ctx);
                return;
            }
            if (ctx.GetEndpoint()?.Metadata.GetMetadata<RateCheckedAtAdmission>() is not null)
            {
                try
                {
                    await next(ctx);
                }
                catch (BadHttpRequestException) when (!ctx.Response.HasStarted)
                {
                    // The body could not be read (malformed JSON, over the size limit): the endpoint never ran
                    // to count the request, so it is counted here, as every other answer; over the limit the
                    // answer is the 429, else the error goes on to the problem writer.
                    if (await CountAsync(ctx, userId) is { } limited)
                    {
                        await ErrorResponses.WriteRefusalAsync(ctx, limited);
                        return;
                    }
                    throw;
                }
                return;
            }
            if (await CountAsync(ctx, userId) is { } refusal)
            {
                await ErrorResponses.WriteRefusalAsync(ctx, refusal);
                return;
            }
            await next(ctx);
        });
        return app;
    }

    /// <summary>Counts the request in its per-minute windows (and the address's pending lockout); the refusal when over.</summary>
    private static ValueTask<LimitRefusal?> CountAsync(HttpContext ctx, Guid userId) =>
        ctx.RequestServices.GetRequiredService<LimitGuard>()
            .CheckRateAsync(userId, ctx.User.ApiKeyId(), ctx.Items[ApiKeyAuthenticationHandler.LockoutPendingItem] as string);
}

/// <summary>
/// Endpoint metadata: the endpoint applies the per-minute limits itself, in the store call that admits
/// the request (<see cref="LimitGuard.AdmitCallAsync"/>, <see cref="LimitGuard.AdmitTurnAsync"/>), and on
/// every answer it gives before that.
/// </summary>
public sealed class RateCheckedAtAdmission
{
    public static readonly RateCheckedAtAdmission Instance = new();

    private RateCheckedAtAdmission()
    {
    }
}

/// <summary>Which endpoints an API key may call, by the matched route pattern (so no spelling of the path gets around it).</summary>
public static class ApiKeyScope
{
    private static readonly string[] Prefixes = ["/v1", "/api/conversations", "/api/files", "/api/models", "/api/me"];

    public static bool Allows(Endpoint? endpoint) =>
        endpoint is null // nothing matched: routing answers 404 or 405
        || endpoint is RouteEndpoint { RoutePattern.RawText: { } raw }
        && Prefixes.Any(p => raw.Equals(p, StringComparison.Ordinal) || raw.StartsWith(p + "/", StringComparison.Ordinal));
}
