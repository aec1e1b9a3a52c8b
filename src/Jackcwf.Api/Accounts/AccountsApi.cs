using System.Security.Claims;
using Jackcwf.Api.Audit;
using Jackcwf.Api.Configuration;
using Jackcwf.Api.Data;
using Jackcwf.Api.Telemetry;
using Jackcwf.Api.Web;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Identity;
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

    public static Ok<MeResponse> GetMe(ClaimsPrincipal user)
    {
        var roles = user.FindAll(ClaimTypes.Role).Select(c => c.Value).Distinct().ToList();
        return TypedResults.Ok(new MeResponse(user.Id(), user.FindFirstValue(ClaimTypes.Email) ?? user.Identity?.Name ?? "", roles, roles.Contains(AppRole.Admin)));
    }

    public static async Task<NoContent> LogoutAsync(SignInManager<AppUser> signIn)
    {
        await signIn.SignOutAsync();
        return TypedResults.NoContent();
    }

    /// <summary>Closes open registration when configured (the first account can always register) and counts sign-ins.</summary>
    private static async ValueTask<object?> RegistrationAndLoginFilterAsync(EndpointFilterInvocationContext ctx, EndpointFilterDelegate next)
    {
        var http = ctx.HttpContext;
        var path = http.Request.Path.Value ?? "";
        if (path.EndsWith("/register", StringComparison.OrdinalIgnoreCase))
        {
            var accounts = http.RequestServices.GetRequiredService<IOptions<AccountsOptions>>().Value;
            if (!accounts.AllowRegistration && http.RequestServices.GetRequiredService<AppDbContext>().Users.Any())
            {
                return Problems.Result(StatusCodes.Status403Forbidden, "registration_closed", "Registration is closed",
                    "An administrator has turned off open registration on this server.");
            }
        }
        // Identity's request records declare Email required but accept null; some of its endpoints then throw.
        foreach (var argument in ctx.Arguments)
        {
            if (argument?.GetType().GetProperty("Email")?.GetValue(argument) is null && argument?.GetType().GetProperty("Email") is not null)
            {
                return Problems.Invalid("email", "is required");
            }
        }
        var result = await next(ctx);
        var method = path.EndsWith("/login", StringComparison.OrdinalIgnoreCase) ? "password"
            : path.EndsWith("/refresh", StringComparison.OrdinalIgnoreCase) ? "refresh" : null;
        var registering = path.EndsWith("/register", StringComparison.OrdinalIgnoreCase);
        if (method is not null || registering)
        {
            // Identity returns a Results<…> union: look at the result inside it.
            var inner = result;
            while (inner is INestedHttpResult nested)
            {
                inner = nested.Result;
            }
            var failed = inner is IStatusCodeHttpResult { StatusCode: >= 400 } or UnauthorizedHttpResult or ProblemHttpResult;
            if (method is not null)
            {
                http.RequestServices.GetRequiredService<JackcwfMetrics>().Login(method, !failed);
            }
            if (method == "password" || registering)
            {
                await AuditSignInAsync(http, ctx.Arguments, registering ? AuditActions.Register : AuditActions.SignIn, failed);
            }
        }
        return result;
    }

    /// <summary>The email comes from Identity's request record; the password in the same record is never read.</summary>
    private static async Task AuditSignInAsync(HttpContext http, IList<object?> arguments, string action, bool failed)
    {
        var email = arguments.Select(a => a?.GetType().GetProperty("Email")?.GetValue(a) as string).FirstOrDefault(e => e is not null);
        var user = email is null || (failed && action == AuditActions.Register) ? null : await http.RequestServices.GetRequiredService<UserManager<AppUser>>().FindByEmailAsync(email);
        await http.RequestServices.GetRequiredService<IAuditLog>().RecordAsync(http, action,
            failed ? AuditOutcomes.Failure : AuditOutcomes.Success,
            target: user is null ? null : $"user:{user.Id}", detail: "password", actorId: user?.Id, actorEmail: user?.Email ?? email);
    }
}
