using System.Security.Claims;
using Jackcwf.Api.Configuration;
using Jackcwf.Api.Data;
using Jackcwf.Api.Telemetry;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Audit;

/// <summary>The one way to write the audit log.</summary>
public interface IAuditLog
{
    /// <summary>
    /// Records an action by the signed-in user of <paramref name="http"/> (or <paramref name="actorId"/>
    /// when the request is not signed in yet, as on sign-in), with the client's address and user agent.
    /// </summary>
    /// <remarks><paramref name="anonymous"/> records no actor at all (an account that deleted itself).</remarks>
    Task RecordAsync(HttpContext http, string action, string outcome = AuditOutcomes.Success, string? target = null,
        string? detail = null, Guid? actorId = null, string? actorEmail = null, bool anonymous = false, CancellationToken ct = default);
}

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

/// <summary>Deletes entries older than <c>AUDIT_RETENTION_DAYS</c>, hourly; every replica may run it (the delete is idempotent).</summary>
public sealed class AuditRetention(
    IServiceScopeFactory scopes, SchemaState schema, IOptions<AuditOptions> options, TimeProvider time, ILogger<AuditRetention> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // First run a minute after the schema is current (start-up stays quiet), then hourly.
        await schema.WhenCurrentAsync(stoppingToken);
        await Task.Delay(TimeSpan.FromMinutes(1), stoppingToken);
        using var timer = new PeriodicTimer(TimeSpan.FromHours(1));
        do
        {
            var days = options.Value.RetentionDays;
            if (days <= 0)
            {
                continue;
            }
            try
            {
                await using var scope = scopes.CreateAsyncScope();
                var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
                var cutoff = time.GetUtcNow().UtcDateTime.AddDays(-days);
                var deleted = await db.Set<AuditEntry>().Where(a => a.CreatedAt < cutoff).ExecuteDeleteAsync(stoppingToken);
                if (deleted > 0)
                {
                    logger.LogInformation("Deleted {Count} audit entries older than {Days} days", deleted, days);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // A database outage: the next hour tries again.
                logger.LogWarning(e, "Audit retention could not run");
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }
}

public static class AuditExtensions
{
    public static IHostApplicationBuilder AddAudit(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSettings<AuditOptions>(AuditOptions.Section);
        builder.Services.AddSingleton<IAuditLog, AuditLog>();
        builder.Services.AddHostedService<AuditRetention>();
        return builder;
    }
}
