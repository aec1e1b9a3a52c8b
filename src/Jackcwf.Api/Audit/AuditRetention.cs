using Jackcwf.Api.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Audit;

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
