using Jackcwf.Api.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Chat;

/// <summary>
/// Settles generations whose owner stopped renewing its lease (a crashed or killed replica): they
/// become <c>interrupted</c> with their checkpointed text, so nothing stays <c>streaming</c>.
/// Safe on every replica at once: the update only matches expired leases. Also forgets
/// idempotency keys past their retention.
/// </summary>
internal sealed class LeaseSweeper(
    IServiceScopeFactory scopes, SchemaState schema, IOptions<ChatSettings> settings, ILogger<LeaseSweeper> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var s = settings.Value;
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(Math.Clamp(s.LeaseSeconds / 3.0, 1, 15)));
        var lastKeyCleanup = DateTime.MinValue;
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            if (!schema.IsCurrent)
            {
                continue;
            }
            try
            {
                await using var scope = scopes.CreateAsyncScope();
                var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
                var now = Clock.UtcNow();
                var n = await db.Messages
                    .Where(m => m.Status == MessageStatuses.Streaming && m.LeaseExpiresAt < now)
                    .ExecuteUpdateAsync(u => u
                        .SetProperty(m => m.Status, MessageStatuses.Interrupted)
                        .SetProperty(m => m.ErrorCode, "interrupted")
                        .SetProperty(m => m.CompletedAt, now)
                        .SetProperty(m => m.UpdatedAt, now)
                        .SetProperty(m => m.LeaseExpiresAt, (DateTime?)null), stoppingToken);
                if (n > 0)
                {
                    logger.LogWarning("Marked {Count} generation(s) interrupted: their replica stopped renewing the lease", n);
                }
                if (now - lastKeyCleanup > TimeSpan.FromHours(1))
                {
                    var cutoff = now.AddHours(-s.IdempotencyRetentionHours);
                    await db.IdempotencyRecords.Where(r => r.CreatedAt < cutoff).ExecuteDeleteAsync(stoppingToken);
                    lastKeyCleanup = now;
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                logger.LogWarning("Lease sweep failed: {Error}", ex.GetType().Name);
            }
        }
    }
}
