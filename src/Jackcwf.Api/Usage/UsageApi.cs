using System.Globalization;
using System.Security.Claims;
using Jackcwf.Api.Accounts;
using Jackcwf.Api.Data;
using Jackcwf.Api.Limits;
using Jackcwf.Api.Web;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace Jackcwf.Api.Usage;

/// <summary><c>CachedRequests</c>: answers from the response cache (cost 0); <c>TokensSaved</c>: the tokens those would have used.</summary>
public sealed record UsageTotals(long InputTokens, long OutputTokens, decimal CostUsd, int Requests, int CachedRequests = 0, long TokensSaved = 0);

public sealed record ModelUsage(string Model, long InputTokens, long OutputTokens, decimal CostUsd, int Requests);

public sealed record DayUsage(string Date, long InputTokens, long OutputTokens, decimal CostUsd, int Requests);

public sealed record UsageReport(DateTime From, DateTime To, UsageTotals Totals, IReadOnlyList<ModelUsage> ByModel, IReadOnlyList<DayUsage> ByDay);

public static class UsageApi
{
    public static IEndpointRouteBuilder MapUsageApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/usage", GetUsageAsync).WithTags("Usage").WithName("GetUsage")
            .WithSummary("Tokens, cost and requests for the caller (administrators: any user) between two dates, by model and by day.")
            .RequireAuthorization();
        return app;
    }

    public static async Task<Results<Ok<UsageReport>, ValidationProblem, ProblemHttpResult>> GetUsageAsync(
        ClaimsPrincipal user, AppDbContext db, UsageLedger ledger, string? from, string? to, Guid? userId, CancellationToken ct)
    {
        // This replica's own calls are in the report at once; other replicas' within their flush interval.
        await ledger.FlushAsync(ct);
        var now = DateTime.UtcNow;
        var start = LimitGuard.MonthStart(now);
        var end = now;
        if (from is not null)
        {
            if (ParseDate(from) is not { } f)
            {
                return Problems.Invalid("from", "must be an ISO 8601 date such as 2026-11-01");
            }
            start = f;
        }
        if (to is not null)
        {
            if (ParseDate(to) is not { } t)
            {
                return Problems.Invalid("to", "must be an ISO 8601 date such as 2026-11-30");
            }
            // A bare date includes that whole day.
            end = to.Length <= 10 ? t.AddDays(1) : t;
        }
        if (end < start)
        {
            return Problems.Invalid("to", "must not be before from");
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
