using Jackcwf.Api.Data;
using Jackcwf.Api.Limits;

namespace Jackcwf.Api.Usage;

/// <summary>Writes one ledger line per generation (never per token) and keeps the month-to-date spend current.</summary>
public sealed class UsageLedger(IServiceScopeFactory scopes, LimitGuard limits, ILogger<UsageLedger> logger)
{
    public const string Chat = "chat";
    public const string Gateway = "gateway";

    public async Task RecordAsync(Guid userId, Guid? apiKeyId, string model, string source, int inputTokens, int outputTokens, decimal costUsd)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await using var scope = scopes.CreateAsyncScope();
                var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
                db.UsageRecords.Add(new UsageRecord
                {
                    Id = Clock.NewId(), UserId = userId, ApiKeyId = apiKeyId, Model = model, Source = source,
                    InputTokens = inputTokens, OutputTokens = outputTokens, CostUsd = costUsd, CreatedAt = Clock.UtcNow(),
                });
                await db.SaveChangesAsync();
                await limits.AddSpendAsync(userId, costUsd);
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
