using Jackcwf.Api.Data;
using Jackcwf.Api.Limits;

namespace Jackcwf.Api.Usage;

/// <summary>Where the pipeline's accounting writes each call's usage.</summary>
public interface IUsageRecorder
{
    Task RecordAsync(Guid userId, Guid? apiKeyId, string model, string source, long inputTokens, long outputTokens, decimal costUsd,
        bool cached = false, long tokensSaved = 0);
}

/// <summary>Writes one ledger line per generation (never per token) and keeps the month-to-date spend current.</summary>
/// <remarks>The month-to-date spend is kept by the budget reservation (<see cref="LimitGuard.ReserveSpendAsync"/>), not here.</remarks>
public sealed class UsageLedger(IServiceScopeFactory scopes, TimeProvider time, ILogger<UsageLedger> logger) : IUsageRecorder
{
    public const string Chat = "chat";
    public const string Gateway = "gateway";

    public async Task RecordAsync(Guid userId, Guid? apiKeyId, string model, string source, long inputTokens, long outputTokens, decimal costUsd,
        bool cached = false, long tokensSaved = 0)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await using var scope = scopes.CreateAsyncScope();
                var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
                db.UsageRecords.Add(new UsageRecord
                {
                    Id = time.NewId(), UserId = userId, ApiKeyId = apiKeyId, Model = model, Source = source,
                    InputTokens = (int)inputTokens, OutputTokens = (int)outputTokens, CostUsd = costUsd, CreatedAt = time.UtcNowForStorage(),
                    Cached = cached, TokensSaved = (int)tokensSaved,
                });
                await db.SaveChangesAsync();
                return;
            }
            catch (Exception ex) when (attempt < 10)
            {
                logger.LogWarning("Recording usage failed (attempt {Attempt}): {Error}", attempt, ex.GetType().Name);
                await Task.Delay(200 * attempt);
            }
        }
    }
}
