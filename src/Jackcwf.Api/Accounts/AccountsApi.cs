using System.Security.Claims;
using Jackcwf.Api.Audit;
using Jackcwf.Api.Data;
using Jackcwf.Api.ErrorHandling;
using Jackcwf.Api.Telemetry;
using Jackcwf.Api.Web;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Accounts;

public sealed record MeResponse(Guid Id, string Email, IReadOnlyList<string> Roles, bool IsAdmin);

public static class AccountsApi
{
    public static IEndpointRouteBuilder MapAccountsApi(this IEndpointRouteBuilder app)
    {
        var auth = app.MapGroup("/api/auth").WithTags("Accounts");
        auth.AddEndpointFilter(RegistrationAndLoginFilterAsync);
        auth.MapIdentityApi<AppUser>();
        auth.MapPost("/logout", LogoutAsync).WithName("Logout").WithSummary("End the cookie session.").RequireAuthorization();

        app.MapGet("/api/me", GetMe).WithTags("Accounts").WithName("GetMe").WithSummary("The signed-in user.").RequireAuthorization();
        return app;
    }

    public static async Task<Ok<MeResponse>> GetMe(ClaimsPrincipal user, UserAccessCache access)
    {
        // Roles from the access cache: a granted or revoked administrator role shows without signing in again.
        var roles = (await access.GetAsync(user.Id()))?.Roles.ToList()
            ?? user.FindAll(ClaimTypes.Role).Select(c => c.Value).Distinct().ToList();
        return TypedResults.Ok(new MeResponse(user.Id(), user.FindFirstValue(ClaimTypes.Email) ?? user.Identity?.Name ?? "", roles, roles.Contains(AppRole.Admin)));
    }

    /// <summary>
    /// Ends the session everywhere: cookies and bearer tokens carry no per-device state, so a copied
    /// cookie or refresh token can only be stopped by a new security stamp, which ends every session of the account.
    /// </summary>
    public static async Task<NoContent> LogoutAsync(ClaimsPrincipal user, SignInManager<AppUser> signIn, IInvalidationBus bus)
    {
        if (await signIn.UserManager.FindByIdAsync(user.Id().ToString()) is { } account)
        {
            await signIn.UserManager.UpdateSecurityStampAsync(account);
            await bus.PublishAsync(UserAccessCache.UserTopic, account.Id);
        }
        await signIn.SignOutAsync();
        return TypedResults.NoContent();
    }

    /// <summary>
    /// Decides by the matched endpoint's route pattern (never the request path's spelling): closed
    /// registration and the first-account rule on register, the throttles on the anonymous routes, and
    /// sign-in metrics.
    /// </summary>
    private static async ValueTask<object?> RegistrationAndLoginFilterAsync(EndpointFilterInvocationContext ctx, EndpointFilterDelegate next)
    {
        var http = ctx.HttpContext;
        var services = http.RequestServices;
        var route = AuthRoutes.Of(http);
        // Identity's request records declare Email required but accept null; some of its endpoints then throw.
        foreach (var argument in ctx.Arguments)
        {
            if (argument?.GetType().GetProperty("Email")?.GetValue(argument) is null && argument?.GetType().GetProperty("Email") is not null)
            {
                return Problems.Invalid("email", "is required");
            }
        }
        var email = ctx.Arguments.Select(a => a?.GetType().GetProperty("Email")?.GetValue(a) as string).FirstOrDefault(e => e is not null);
        var account = email is null ? null : services.GetRequiredService<ILookupNormalizer>().NormalizeEmail(email.Trim());
        var client = AuthRoutes.ClientKey(http);
        var throttle = services.GetRequiredService<AuthThrottle>();
        if (route is not (null or AuthRoutes.Manage or AuthRoutes.ConfirmEmail) && await throttle.HitAsync(route, client) is { } refusal)
        {
            return Refusal(http, refusal);
        }
        if (route == AuthRoutes.Register && await RegistrationRefusalAsync(http) is { } closed)
        {
            return closed;
        }
        if (route == AuthRoutes.Login && await throttle.CheckSignInAsync(client, account) is { } signInRefusal)
        {
            return Refusal(http, signInRefusal);
        }
        if (route is AuthRoutes.ForgotPassword or AuthRoutes.ResendConfirmation && account is not null
            && await throttle.HitEmailAsync(account) is { } emailRefusal)
        {
            return Refusal(http, emailRefusal);
        }
        var result = await next(ctx);
        var failed = Failed(result);
        if (route == AuthRoutes.Login && failed)
        {
            await throttle.RecordFailedSignInAsync(client, account);
        }
        if (route == AuthRoutes.Manage && !failed && !HttpMethods.IsGet(http.Request.Method) && http.User.Identity?.IsAuthenticated == true)
        {
            // A new password or 2FA setting renews the security stamp: drop the cached one on every replica.
            await services.GetRequiredService<IInvalidationBus>().PublishAsync(UserAccessCache.UserTopic, http.User.Id());
        }
        if (route is AuthRoutes.Login or AuthRoutes.Refresh)
        {
            services.GetRequiredService<JackcwfMetrics>().Login(route == AuthRoutes.Login ? "password" : "refresh", !failed);
        }
        if (route is AuthRoutes.Login or AuthRoutes.Register)
        {
            await AuditSignInAsync(http, email, route == AuthRoutes.Register ? AuditActions.Register : AuditActions.SignIn, failed);
        }
        return result;
    }

    /// <summary>Closed registration, and the first account only from this machine or with the setup token.</summary>
    private static async Task<ProblemHttpResult?> RegistrationRefusalAsync(HttpContext http)
    {
        var services = http.RequestServices;
        if (!await services.GetRequiredService<AppDbContext>().Users.AnyAsync(http.RequestAborted))
        {
            if (!AuthRoutes.IsLoopback(http))
            {
                if (!services.GetRequiredService<SetupToken>().IsValid(http.Request.Headers[SetupToken.Header]))
                {
                    return Problems.Result(StatusCodes.Status403Forbidden, "setup_token_required", "The first account needs the setup token",
                        $"No account exists yet. Create the administrator from the server itself (localhost), or send the {SetupToken.Header} header printed in the service's log at start-up.");
                }
                // Audited when the account it creates becomes the administrator (AppUserManager).
                http.Items[AppUserManager.SetupTokenPresented] = true;
            }
            http.Items[AppUserManager.FirstAccountAttempt] = true;
            return null;
        }
        if (!services.GetRequiredService<IOptions<AccountsOptions>>().Value.AllowRegistration)
        {
            return Problems.Result(StatusCodes.Status403Forbidden, "registration_closed", "Registration is closed",
                "An administrator has turned off open registration on this server.");
        }
        return null;
    }

    private static IResult Refusal(HttpContext http, Limits.LimitRefusal refusal)
    {
        http.Response.Headers.RetryAfter = refusal.RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var problem = Problems.Create(StatusCodes.Status429TooManyRequests, "rate_limited", refusal.Title, refusal.Detail);
        problem.Extensions["limit"] = refusal.Limit;
        return TypedResults.Problem(problem);
    }

    private static bool Failed(object? result)
    {
        // Identity returns a Results<…> union: look at the result inside it.
        var inner = result;
        while (inner is INestedHttpResult nested)
        {
            inner = nested.Result;
        }
        return inner is IStatusCodeHttpResult { StatusCode: >= 400 } or UnauthorizedHttpResult or ProblemHttpResult or ValidationProblem;
    }

    /// <summary>The email comes from Identity's request record; the password in the same record is never read.</summary>
    private static async Task AuditSignInAsync(HttpContext http, string? email, string action, bool failed)
    {
        var user = email is null || (failed && action == AuditActions.Register) ? null : await http.RequestServices.GetRequiredService<UserManager<AppUser>>().FindByEmailAsync(email);
        await http.RequestServices.GetRequiredService<IAuditLog>().RecordAsync(http, action,
            failed ? AuditOutcomes.Failure : AuditOutcomes.Success,
            target: user is null ? null : $"user:{user.Id}", detail: "password", actorId: user?.Id, actorEmail: user?.Email ?? email);
    }
}
