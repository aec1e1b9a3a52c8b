using System.Security.Claims;
using Jackcwf.Api.Accounts;
using Jackcwf.Api.Audit;
using Jackcwf.Api.Data;
using Jackcwf.Api.ErrorHandling;
using Jackcwf.Api.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Identity;

namespace Jackcwf.Api.Privacy;

/// <summary><c>password</c> is required for accounts that have one; accounts that sign in only with SSO need a sign-in from the last 10 minutes.</summary>
public sealed record DeleteAccountRequest(string? Password);

public static class AccountDeletionApi
{
    public static readonly TimeSpan FreshSignIn = TimeSpan.FromMinutes(10);

    public static IHostApplicationBuilder AddPrivacy(this IHostApplicationBuilder builder)
    {
        builder.Services.AddScoped<AccountDeletion>();
        return builder;
    }

    public static IEndpointRouteBuilder MapAccountDeletionApi(this IEndpointRouteBuilder app)
    {
        app.MapDelete("/api/me", DeleteMeAsync).WithTags("Accounts").RequireAuthorization().WithName("DeleteMyAccount")
            .WithSummary("Delete the caller's account and everything it owns; the password is re-entered (or, for SSO accounts, a fresh sign-in).");
        app.MapDelete("/api/admin/users/{id:guid}", AdminDeleteAsync).WithTags("Administration").RequireAuthorization(AdminApi.Policy)
            .WithName("AdminDeleteUser").WithSummary("Delete a user and everything they own, as DELETE /api/me does.");
        return app;
    }

    public static async Task<Results<NoContent, ProblemHttpResult, ValidationProblem>> DeleteMeAsync(
        HttpContext http, ClaimsPrincipal user, UserManager<AppUser> users, AccountDeletion deletion, IAuditLog audit, TimeProvider time,
        [Microsoft.AspNetCore.Mvc.FromBody(EmptyBodyBehavior = Microsoft.AspNetCore.Mvc.ModelBinding.EmptyBodyBehavior.Allow)] DeleteAccountRequest? request, CancellationToken ct)
    {
        var me = await users.FindByIdAsync(user.Id().ToString());
        if (me is null)
        {
            return Problems.NotFound("account");
        }
        if (await users.HasPasswordAsync(me))
        {
            if (string.IsNullOrEmpty(request?.Password))
            {
                return Problems.Invalid("password", "re-enter your password to delete your account");
            }
            if (!await users.CheckPasswordAsync(me, request.Password))
            {
                await audit.RecordAsync(http, AuditActions.AccountDeleted, AuditOutcomes.Failure, target: $"user:{me.Id}", detail: "wrong password", ct: ct);
                return Problems.Invalid("password", "does not match this account's password; nothing was deleted");
            }
        }
        else
        {
            var issued = (await http.AuthenticateAsync()).Properties?.IssuedUtc;
            if (issued is null || time.GetUtcNow() - issued > FreshSignIn)
            {
                return Problems.Result(StatusCodes.Status403Forbidden, "reauthentication_required", "Sign in again first",
                    $"Accounts without a password must have signed in within the last {FreshSignIn.TotalMinutes:0} minutes to delete themselves.");
            }
        }
        await deletion.DeleteAsync(me.Id, ct);
        // Written after the deletion anonymised the account's entries: this one names nobody either.
        await audit.RecordAsync(http, AuditActions.AccountDeleted, target: AccountDeletion.DeletedTarget, detail: "self", anonymous: true, ct: ct);
        await http.SignOutAsync(IdentityConstants.ApplicationScheme);
        return TypedResults.NoContent();
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> AdminDeleteAsync(
        HttpContext http, ClaimsPrincipal admin, Guid id, AccountDeletion deletion, IAuditLog audit, CancellationToken ct)
    {
        if (id == admin.Id())
        {
            return Problems.Conflict("Administrators delete their own account with DELETE /api/me.");
        }
        if (!await deletion.DeleteAsync(id, ct))
        {
            return Problems.NotFound("user");
        }
        await audit.RecordAsync(http, AuditActions.AccountDeleted, target: AccountDeletion.DeletedTarget, detail: "by administrator", ct: ct);
        return TypedResults.NoContent();
    }
}
