using System.Security.Claims;
using Jackcwf.Api.Data;
using Jackcwf.Api.Telemetry;
using Microsoft.EntityFrameworkCore;

namespace Jackcwf.Api.Audit;

/// <summary>
/// Writes each entry in its own short unit of work, before the response: the actions are rare
/// (sign-ins, key and role changes), and a security record must not be lost with a queue when a
/// replica dies. A failure to write is logged and never fails the user's request.
/// </summary>
public sealed class AuditLog(IServiceScopeFactory scopes, JackcwfMetrics metrics, TimeProvider time, ILogger<AuditLog> logger) : IAuditLog
{
    public async Task RecordAsync(HttpContext http, string action, string outcome = AuditOutcomes.Success, string? target = null,
        string? detail = null, Guid? actorId = null, string? actorEmail = null, bool anonymous = false, CancellationToken ct = default)
    {
        var user = http.User;
        if (!anonymous && actorId is null && user.Identity?.IsAuthenticated == true && Guid.TryParse(user.FindFirstValue(ClaimTypes.NameIdentifier), out var id))
        {
            actorId = id;
            actorEmail ??= user.FindFirstValue(ClaimTypes.Email) ?? user.Identity?.Name;
        }
        var entry = new AuditEntry
        {
            Id = time.NewId(),
            CreatedAt = time.UtcNowForStorage(),
            Action = action,
            Outcome = outcome,
            ActorId = actorId,
            ActorEmail = Cut(actorEmail, 256),
            Target = Cut(target, 128),
            Ip = Cut(http.Connection.RemoteIpAddress?.ToString(), 64),
            UserAgent = Cut(http.Request.Headers.UserAgent.ToString(), 256),
            Detail = Cut(detail, 256),
        };
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
            db.Set<AuditEntry>().Add(entry);
            // Not the request's token: an entry for an action that happened is written even if the client left.
            await db.SaveChangesAsync(CancellationToken.None);
            metrics.AuditEntry(action, outcome);
        }
        catch (Exception e) when (e is DbUpdateException or InvalidOperationException or TimeoutException)
        {
            metrics.AuditEntry(action, "write_failed");
            logger.LogError(e, "Could not write the audit entry {Action} ({Outcome})", action, outcome);
        }
    }

    private static string? Cut(string? s, int max) => string.IsNullOrEmpty(s) ? null : s.Length <= max ? s : s[..max];
}
