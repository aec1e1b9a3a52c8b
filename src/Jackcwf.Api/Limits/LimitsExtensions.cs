using System.Security.Claims;
using Jackcwf.Api.Accounts;
using Jackcwf.Api.Web;

namespace Jackcwf.Api.Limits;

public static class LimitsExtensions
{
    public static IHostApplicationBuilder AddLimits(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<InProcessLimitStore>();
        // With the Redis backplane the counters are shared by every replica; without it they are this process's.
        builder.Services.AddSingleton<ILimitStore>(sp => sp.GetService<StackExchange.Redis.IConnectionMultiplexer>() is { } redis
            ? new RedisLimitStore(redis, sp.GetRequiredService<InProcessLimitStore>(), sp.GetRequiredService<ILogger<RedisLimitStore>>())
            : sp.GetRequiredService<InProcessLimitStore>());
        builder.Services.AddSingleton<LimitGuard>();
        return builder;
    }

    /// <summary>
    /// After authentication: refuses disabled accounts and revoked keys (from a cache with
    /// cross-replica invalidation, not a database read per request), then applies the per-minute limits.
    /// </summary>
    public static WebApplication UseAccessAndRateLimits(this WebApplication app)
    {
        app.Use(async (ctx, next) =>
        {
            var path = ctx.Request.Path;
            if (ctx.User.Identity?.IsAuthenticated != true
                || !(path.StartsWithSegments("/api") || path.StartsWithSegments("/v1"))
                || path.StartsWithSegments("/api/auth"))
            {
                await next(ctx);
                return;
            }
            var userId = ctx.User.Id();
            var access = ctx.RequestServices.GetRequiredService<UserAccessCache>();
            if (!await access.IsAllowedAsync(ctx.User))
            {
                await ErrorResponses.WriteAsync(ctx, 401, "account_disabled", "Access revoked",
                    "This account is disabled or this key was revoked.");
                return;
            }
            var refusal = await ctx.RequestServices.GetRequiredService<LimitGuard>().CheckRateAsync(userId, ctx.User.ApiKeyId());
            if (refusal is not null)
            {
                await ErrorResponses.WriteRefusalAsync(ctx, refusal);
                return;
            }
            await next(ctx);
        });
        return app;
    }
}
