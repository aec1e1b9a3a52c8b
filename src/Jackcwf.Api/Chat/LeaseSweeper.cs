using Jackcwf.Api.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Chat;

/// <summary>
/// Settles generations whose owner stopped renewing its lease (a crashed or killed replica): they
/// become <c>interrupted</c> with their checkpointed text, so nothing stays <c>streaming</c>, and their streams in the
/// event log are kept only as long as a finished answer's.
/// Safe on every replica at once: the update only matches expired leases. Also forgets
/// idempotency keys past their retention.
/// </summary>
/// <remarks>
/// After the database was away (a failover), every lease may have run out while its owner was alive
/// and waiting to checkpoint: the sweeper then holds off for one lease period, so owners renew first.
/// </remarks>
internal sealed class LeaseSweeper(
    IServiceScopeFactory scopes, SchemaState schema, IOptions<ChatSettings> settings, IGenerationEventLog events, TimeProvider time,
    ILogger<LeaseSweeper> logger) : BackgroundService
{
    private const int SweepBatch = 500;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var s = settings.Value;
        var period = TimeSpan.FromSeconds(Math.Clamp(s.LeaseSeconds / 3.0, 1, 15));
        using var timer = new PeriodicTimer(period);
        var lastKeyCleanup = DateTime.MinValue;
        var lastReached = time.GetUtcNow().UtcDateTime;
        var holdUntil = DateTime.MinValue;
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
                // Waits (retrying) while the database is away; a long gap since the last answer means it was.
                await db.Database.ExecuteSqlRawAsync("SELECT 1", stoppingToken);
                var reached = time.GetUtcNow().UtcDateTime;
                if (reached - lastReached > 2 * period + TimeSpan.FromSeconds(1))
                {
                    holdUntil = reached.AddSeconds(s.LeaseSeconds + 1);
                    logger.LogInformation("Database reachable again after {Seconds:F0} s: expired leases are settled from {Hold:O} on, once their owners had time to renew them",
                        (reached - lastReached).TotalSeconds, holdUntil);
                }
                lastReached = reached;
                if (reached < holdUntil)
                {
                    continue;
                }
                var now = time.UtcNowForStorage();
                // The expired ones first (none, almost always: a read of the running generations' index), then those
                // in one update, in batches so a replica that died with thousands running is settled a batch at a time.
                while (true)
                {
                    var expired = await db.Messages
                        .Where(m => m.Status == MessageStatuses.Streaming && m.LeaseExpiresAt < now)
                        .Select(m => m.Id).Take(SweepBatch).ToListAsync(stoppingToken);
                    if (expired.Count == 0)
                    {
                        break;
                    }
                    // The same condition again: another replica's sweeper, or the owner's late checkpoint, may have come first.
                    var n = await db.Messages
                        .Where(m => expired.Contains(m.Id) && m.Status == MessageStatuses.Streaming && m.LeaseExpiresAt < now)
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
                    // Their streams in Redis are only memory now: kept as long as a finished answer's, not a running one's.
                    await events.AbandonAsync(expired);
                    if (expired.Count < SweepBatch)
                    {
                        break;
                    }
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
