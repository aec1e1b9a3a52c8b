using System.Globalization;
using System.Security.Claims;
using Jackcwf.Api.Accounts;
using Jackcwf.Api.Data;
using Jackcwf.Api.ErrorHandling;
using Jackcwf.Api.Limits;
using Jackcwf.Api.Web;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace Jackcwf.Api.Usage;

public static class UsageApi
{
    public static IEndpointRouteBuilder MapUsageApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/usage", GetUsageAsync).ReportsUnparsedQuery().WithTags("Usage").WithName("GetUsage")
            .WithSummary("Tokens, cost and requests for the caller (administrators: any user) between two dates, by model and by day.")
            .RequireAuthorization();
        app.MapGet("/api/admin/usage", GetAdminUsageAsync).WithTags("Administration").WithName("AdminGetUsage")
            .WithSummary("Every account's usage between two dates by model, with the thumbs up and down each model's answers got.")
            .RequireAuthorization(AdminApi.Policy);
        return app;
    }

    public static async Task<Results<Ok<UsageReport>, ValidationProblem, ProblemHttpResult>> GetUsageAsync(
        ClaimsPrincipal user, AppDbContext db, UsageLedger ledger, TimeProvider time, string? from, string? to, Guid? userId, CancellationToken ct)
    {
        // This replica's own calls are in the report at once; other replicas' within their flush interval.
        await ledger.FlushAsync(ct);
        var (start, end, invalid) = Period(from, to, time.GetUtcNow().UtcDateTime);
        if (invalid is not null)
        {
            return invalid;
        }
        var target = user.Id();
        if (userId is { } requested && requested != target)
        {
            // Another user's usage exists only for administrators; for everyone else it is "not found".
            if (!user.IsInRole(AppRole.Admin) || !await db.Users.AnyAsync(u => u.Id == requested, ct))
            {
                return Problems.NotFound("user");
            }
            target = requested;
        }
        return TypedResults.Ok(await ReportAsync(db, target, start, end, ct));
    }

    public static async Task<Results<Ok<AdminUsageReport>, ValidationProblem>> GetAdminUsageAsync(
        AppDbContext db, UsageLedger ledger, TimeProvider time, string? from, string? to, CancellationToken ct)
    {
        await ledger.FlushAsync(ct);
        var (start, end, invalid) = Period(from, to, time.GetUtcNow().UtcDateTime);
        if (invalid is not null)
        {
            return invalid;
        }
        // Summed here like the per-user report: SQLite cannot add up decimals in SQL.
        var usage = await db.UsageRecords.AsNoTracking().Where(u => u.CreatedAt >= start && u.CreatedAt < end)
            .Select(u => new { u.Model, u.InputTokens, u.OutputTokens, u.CostUsd }).ToListAsync(ct);
        var ratings = await db.MessageFeedback.AsNoTracking().Where(f => f.UpdatedAt >= start && f.UpdatedAt < end)
            .GroupBy(f => new { f.Model, f.Rating }).Select(g => new { g.Key.Model, g.Key.Rating, Count = g.Count() }).ToListAsync(ct);
        int Rated(string model, string rating) => ratings.Where(r => r.Model == model && r.Rating == rating).Sum(r => r.Count);
        var byModel = usage.Select(u => u.Model).Concat(ratings.Select(r => r.Model)).Distinct()
            .Select(m =>
            {
                var rows = usage.Where(u => u.Model == m).ToList();
                return new AdminModelUsage(m, rows.Sum(r => (long)r.InputTokens), rows.Sum(r => (long)r.OutputTokens), rows.Sum(r => r.CostUsd), rows.Count,
                    Rated(m, Feedback.FeedbackRatings.Up), Rated(m, Feedback.FeedbackRatings.Down));
            })
            .OrderByDescending(m => m.CostUsd).ThenByDescending(m => m.Requests).ThenBy(m => m.Model).ToList();
        return TypedResults.Ok(new AdminUsageReport(start, end, byModel));
    }

    /// <summary>The period of <c>from</c>..<c>to</c> (default: this month so far), or the problem naming the bad field.</summary>
    private static (DateTime Start, DateTime End, ValidationProblem? Invalid) Period(string? from, string? to, DateTime now)
    {
        var start = LimitGuard.MonthStart(now);
        var end = now;
        if (from is not null)
        {
            if (ParseDate(from) is not { } f)
            {
                return (default, default, Problems.Invalid("from", "must be an ISO 8601 date such as 2026-11-01"));
            }
            start = f;
        }
        if (to is not null)
        {
            if (ParseDate(to) is not { } t)
            {
                return (default, default, Problems.Invalid("to", "must be an ISO 8601 date such as 2026-11-30"));
            }
            // A bare date includes that whole day.
            end = to.Length <= 10 ? t.AddDays(1) : t;
        }
        return end < start ? (default, default, Problems.Invalid("to", "must not be before from")) : (start, end, null);
    }

    internal static async Task<UsageReport> ReportAsync(AppDbContext db, Guid userId, DateTime start, DateTime end, CancellationToken ct)
    {
        var rows = await db.UsageRecords.AsNoTracking()
            .Where(u => u.UserId == userId && u.CreatedAt >= start && u.CreatedAt < end)
            .Select(u => new { u.Model, u.InputTokens, u.OutputTokens, u.CostUsd, u.CreatedAt, u.Cached, u.TokensSaved })
            .ToListAsync(ct);
        var totals = new UsageTotals(rows.Sum(r => (long)r.InputTokens), rows.Sum(r => (long)r.OutputTokens), rows.Sum(r => r.CostUsd), rows.Count,
            rows.Count(r => r.Cached), rows.Sum(r => (long)r.TokensSaved));
        var byModel = rows.GroupBy(r => r.Model).OrderByDescending(g => g.Sum(r => r.CostUsd)).ThenBy(g => g.Key)
            .Select(g => new ModelUsage(g.Key, g.Sum(r => (long)r.InputTokens), g.Sum(r => (long)r.OutputTokens), g.Sum(r => r.CostUsd), g.Count())).ToList();
        var byDay = rows.GroupBy(r => r.CreatedAt.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)).OrderBy(g => g.Key)
            .Select(g => new DayUsage(g.Key, g.Sum(r => (long)r.InputTokens), g.Sum(r => (long)r.OutputTokens), g.Sum(r => r.CostUsd), g.Count())).ToList();
        return new UsageReport(start, end, totals, byModel, byDay);
    }

    private static DateTime? ParseDate(string s) =>
        DateTime.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var d) ? d : null;
}
