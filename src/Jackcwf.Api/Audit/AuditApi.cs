using System.Buffers.Text;
using System.Globalization;
using System.Text;
using Jackcwf.Api.Accounts;
using Jackcwf.Api.ErrorHandling;
using Jackcwf.Api.Web;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace Jackcwf.Api.Audit;

public sealed record AuditEntryDto(Guid Id, DateTime CreatedAt, string Action, string Outcome, Guid? ActorId, string? ActorEmail,
    string? Target, string? Ip, string? UserAgent, string? Detail)
{
    public static AuditEntryDto From(AuditEntry a) => new(a.Id, a.CreatedAt, a.Action, a.Outcome, a.ActorId, a.ActorEmail, a.Target, a.Ip, a.UserAgent, a.Detail);
}

public sealed record AuditPage(IReadOnlyList<AuditEntryDto> Items, string? NextCursor);

public static class AuditApi
{
    public static IEndpointRouteBuilder MapAuditApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/admin/audit", ListAuditAsync).ReportsUnparsedQuery().WithTags("Administration").RequireAuthorization(AdminApi.Policy)
            .WithName("AdminListAudit").WithSummary("The audit log, newest first, filtered by action, outcome, actor, target and time, with cursor paging.");
        return app;
    }

    public static async Task<Results<Ok<AuditPage>, ValidationProblem>> ListAuditAsync(
        Data.AppDbContext db, string? action, string? outcome, Guid? actorId, string? target, DateTime? from, DateTime? to,
        int? limit, string? cursor, CancellationToken ct)
    {
        var take = limit ?? 50;
        if (take is < 1 or > 200)
        {
            return Problems.Invalid("limit", "must be between 1 and 200");
        }
        if (action is { Length: > 64 } || target is { Length: > 128 })
        {
            return Problems.Invalid(action is { Length: > 64 } ? "action" : "target", "is longer than any stored value");
        }
        if (outcome is not (null or AuditOutcomes.Success or AuditOutcomes.Failure))
        {
            return Problems.Invalid("outcome", "must be success or failure");
        }
        (DateTime At, Guid Id)? after = null;
        if (!string.IsNullOrEmpty(cursor))
        {
            if (DecodeCursor(cursor) is not { } c)
            {
                return Problems.Invalid("cursor", "is not a cursor returned by this API");
            }
            after = c;
        }
        var q = db.Set<AuditEntry>().AsNoTracking();
        if (!string.IsNullOrEmpty(action))
        {
            q = q.Where(a => a.Action == action);
        }
        if (outcome is not null)
        {
            q = q.Where(a => a.Outcome == outcome);
        }
        if (actorId is { } actor)
        {
            q = q.Where(a => a.ActorId == actor);
        }
        if (!string.IsNullOrEmpty(target))
        {
            q = q.Where(a => a.Target == target);
        }
        if (from is { } f)
        {
            var fu = f.ToUniversalTime();
            q = q.Where(a => a.CreatedAt >= fu);
        }
        if (to is { } t)
        {
            var tu = t.ToUniversalTime();
            q = q.Where(a => a.CreatedAt < tu);
        }
        if (after is { } k)
        {
            // Timestamps are unique per replica (StorageTime); the id breaks ties between replicas.
            q = q.Where(a => a.CreatedAt < k.At || (a.CreatedAt == k.At && a.Id.CompareTo(k.Id) < 0));
        }
        var rows = await q.OrderByDescending(a => a.CreatedAt).ThenByDescending(a => a.Id).Take(take + 1).ToListAsync(ct);
        var more = rows.Count > take;
        var items = rows.Take(take).Select(AuditEntryDto.From).ToList();
        return TypedResults.Ok(new AuditPage(items, more ? EncodeCursor(items[^1].CreatedAt, items[^1].Id) : null));
    }

    private static string EncodeCursor(DateTime at, Guid id) =>
        Base64Url.EncodeToString(Encoding.ASCII.GetBytes(at.Ticks.ToString(CultureInfo.InvariantCulture) + "." + id.ToString("N")));

    private static (DateTime, Guid)? DecodeCursor(string cursor)
    {
        try
        {
            var parts = Encoding.ASCII.GetString(Base64Url.DecodeFromChars(cursor)).Split('.');
            if (parts.Length == 2 && long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var ticks)
                && ticks > 0 && ticks < DateTime.MaxValue.Ticks && Guid.TryParseExact(parts[1], "N", out var id))
            {
                return (new DateTime(ticks, DateTimeKind.Utc), id);
            }
            return null;
        }
        catch (FormatException)
        {
            return null;
        }
    }
}
