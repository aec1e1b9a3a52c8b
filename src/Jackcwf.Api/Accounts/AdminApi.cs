using System.Globalization;
using Jackcwf.Api.Audit;
using Jackcwf.Api.Data;
using Jackcwf.Api.ErrorHandling;
using Jackcwf.Api.Limits;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;

namespace Jackcwf.Api.Accounts;

public static class AdminApi
{
    public const string Policy = "admin";

    public static IEndpointRouteBuilder MapAdminApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/admin/users").WithTags("Administration").RequireAuthorization(Policy);
        api.MapGet("/", ListUsersAsync).WithName("AdminListUsers").WithSummary("Every user with this month's usage.");
        api.MapPost("/{id:guid}/disable", DisableAsync).WithName("AdminDisableUser").WithSummary("Disable a user: tokens, keys and open streams stop working at once.");
        api.MapPost("/{id:guid}/enable", EnableAsync).WithName("AdminEnableUser").WithSummary("Enable a user again.");
        api.MapPatch("/{id:guid}", UpdateAsync).WithName("AdminUpdateUser").WithSummary("Set a user's monthly budget.");
        api.MapPost("/{id:guid}/admin", GrantAdminAsync).WithName("AdminGrantAdministrator").WithSummary("Make a user an administrator.");
        api.MapDelete("/{id:guid}/admin", RevokeAdminAsync).WithName("AdminRevokeAdministrator")
            .WithSummary("Take the administrator role from a user; the last administrator keeps it (409).");
        return app;
    }

    public static async Task<Ok<AdminUserList>> ListUsersAsync(AppDbContext db, Usage.UsageLedger ledger, TimeProvider time, CancellationToken ct)
    {
        await ledger.FlushAsync(ct);
        var start = LimitGuard.MonthStart(time.GetUtcNow().UtcDateTime);
        var users = await db.Users.AsNoTracking().OrderBy(u => u.CreatedAt)
            .Select(u => new { u.Id, u.Email, u.IsDisabled, u.CreatedAt, u.MonthlyBudgetUsd }).ToListAsync(ct);
        var admins = (await (from ur in db.UserRoles join r in db.Roles on ur.RoleId equals r.Id where r.Name == AppRole.Admin select ur.UserId).ToListAsync(ct)).ToHashSet();
        var usage = (await db.UsageRecords.AsNoTracking().Where(u => u.CreatedAt >= start)
                .Select(u => new { u.UserId, u.CostUsd, u.InputTokens, u.OutputTokens }).ToListAsync(ct))
            .GroupBy(u => u.UserId)
            .ToDictionary(g => g.Key, g => new AdminUsage(g.Sum(x => x.CostUsd), g.Count(), g.Sum(x => (long)x.InputTokens), g.Sum(x => (long)x.OutputTokens)));
        return TypedResults.Ok(new AdminUserList(users.Select(u => new AdminUser(u.Id, u.Email ?? "", admins.Contains(u.Id), u.IsDisabled, u.CreatedAt,
            u.MonthlyBudgetUsd, usage.GetValueOrDefault(u.Id) ?? new AdminUsage(0, 0, 0, 0))).ToList()));
    }

    public static Task<Results<NoContent, ProblemHttpResult>> DisableAsync(
        HttpContext http, Guid id, UserManager<AppUser> users, IInvalidationBus bus, AccessRevocations revocations, IAuditLog audit) =>
        SetDisabledAsync(http, id, true, users, bus, revocations, audit);

    public static Task<Results<NoContent, ProblemHttpResult>> EnableAsync(
        HttpContext http, Guid id, UserManager<AppUser> users, IInvalidationBus bus, AccessRevocations revocations, IAuditLog audit) =>
        SetDisabledAsync(http, id, false, users, bus, revocations, audit);

    private static async Task<Results<NoContent, ProblemHttpResult>> SetDisabledAsync(
        HttpContext http, Guid id, bool disabled, UserManager<AppUser> users, IInvalidationBus bus, AccessRevocations revocations, IAuditLog audit)
    {
        var admin = http.User;
        if (id == admin.Id() && disabled)
        {
            return Problems.Conflict("Administrators cannot disable their own account.");
        }
        var user = await users.FindByIdAsync(id.ToString());
        if (user is null)
        {
            return Problems.NotFound("user");
        }
        user.IsDisabled = disabled;
        await users.UpdateAsync(user);
        // A new security stamp invalidates the user's refresh tokens and cookies.
        await users.UpdateSecurityStampAsync(user);
        await bus.PublishAsync(UserAccessCache.UserTopic, id);
        if (disabled)
        {
            // Chat generations and gateway streams of the user stop on every replica.
            await revocations.RevokeUserAsync(id);
        }
        await audit.RecordAsync(http, disabled ? AuditActions.UserDisabled : AuditActions.UserEnabled, target: $"user:{id}");
        return TypedResults.NoContent();
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> GrantAdminAsync(
        HttpContext http, Guid id, UserManager<AppUser> users, IInvalidationBus bus, IAuditLog audit, ILogger<AdminUser> logger)
    {
        var user = await users.FindByIdAsync(id.ToString());
        if (user is null)
        {
            return Problems.NotFound("user");
        }
        if (!await users.IsInRoleAsync(user, AppRole.Admin))
        {
            await users.AddToRoleAsync(user, AppRole.Admin);
            logger.LogInformation("User {UserId} was made administrator", id);
            await audit.RecordAsync(http, AuditActions.RoleGranted, target: $"user:{id}", detail: AppRole.Admin);
        }
        await bus.PublishAsync(UserAccessCache.UserTopic, id);
        return TypedResults.NoContent();
    }

    /// <summary>
    /// Removes the role, then counts the administrators left: when two administrators revoke each other
    /// at once (even on two replicas) both see none left and put the role back, so one always remains.
    /// </summary>
    public static async Task<Results<NoContent, ProblemHttpResult>> RevokeAdminAsync(
        HttpContext http, Guid id, UserManager<AppUser> users, IInvalidationBus bus, IAuditLog audit, ILogger<AdminUser> logger)
    {
        var user = await users.FindByIdAsync(id.ToString());
        if (user is null)
        {
            return Problems.NotFound("user");
        }
        if (!await users.IsInRoleAsync(user, AppRole.Admin))
        {
            return TypedResults.NoContent();
        }
        if ((await users.GetUsersInRoleAsync(AppRole.Admin)).Count <= 1)
        {
            return LastAdministrator();
        }
        await users.RemoveFromRoleAsync(user, AppRole.Admin);
        if ((await users.GetUsersInRoleAsync(AppRole.Admin)).Count == 0)
        {
            await users.AddToRoleAsync(user, AppRole.Admin);
            return LastAdministrator();
        }
        await bus.PublishAsync(UserAccessCache.UserTopic, id);
        logger.LogInformation("User {UserId} is no longer administrator", id);
        await audit.RecordAsync(http, AuditActions.RoleRevoked, target: $"user:{id}", detail: AppRole.Admin);
        return TypedResults.NoContent();
    }

    private static ProblemHttpResult LastAdministrator() =>
        Problems.Result(StatusCodes.Status409Conflict, "last_administrator", "The last administrator stays",
            "This is the only administrator: make another user administrator first.");

    public static async Task<Results<Ok<AdminUser>, ProblemHttpResult, ValidationProblem>> UpdateAsync(
        HttpContext http, Guid id, UpdateUserRequest? request, AppDbContext db, IInvalidationBus bus, IAuditLog audit, CancellationToken ct)
    {
        if (request is null || (request.MonthlyBudgetUsd is null && request.ClearBudget != true))
        {
            return Problems.Invalid("monthlyBudgetUsd", "give a budget in US dollars, or clearBudget: true");
        }
        if (request.MonthlyBudgetUsd is < 0)
        {
            return Problems.Invalid("monthlyBudgetUsd", "must not be negative");
        }
        var user = await db.Users.FirstOrDefaultAsync(u => u.Id == id, ct);
        if (user is null)
        {
            return Problems.NotFound("user");
        }
        var before = user.MonthlyBudgetUsd;
        user.MonthlyBudgetUsd = request.ClearBudget == true ? null : request.MonthlyBudgetUsd;
        await db.SaveChangesAsync(ct);
        await bus.PublishAsync(UserAccessCache.UserTopic, id);
        await audit.RecordAsync(http, AuditActions.BudgetChanged, target: $"user:{id}", detail: $"{Usd(before)} -> {Usd(user.MonthlyBudgetUsd)}", ct: ct);
        var isAdmin = await (from ur in db.UserRoles join r in db.Roles on ur.RoleId equals r.Id where ur.UserId == id && r.Name == AppRole.Admin select ur).AnyAsync(ct);
        return TypedResults.Ok(new AdminUser(user.Id, user.Email ?? "", isAdmin, user.IsDisabled, user.CreatedAt, user.MonthlyBudgetUsd, new AdminUsage(0, 0, 0, 0)));
    }

    private static string Usd(decimal? v) => v is { } d ? "$" + d.ToString("0.00##", CultureInfo.InvariantCulture) : "default";
}
