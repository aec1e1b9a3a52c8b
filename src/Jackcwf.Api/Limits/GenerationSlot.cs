using System.Globalization;
using Microsoft.EntityFrameworkCore;

namespace Jackcwf.Api.Limits;

/// <summary>A held concurrency slot; disposing it frees the slot (once; later calls do nothing).</summary>
public sealed class GenerationSlot(ILimitStore store, string bucket, string slot) : IAsyncDisposable
{
    private int _released;

    public ValueTask DisposeAsync() => ReleaseAsync(null);

    /// <summary>
    /// Frees the slot and applies <paramref name="spend"/> (a settlement) in one store call; when the slot
    /// was already freed, the spend still is applied.
    /// </summary>
    public ValueTask ReleaseAsync(SpendDelta? spend)
    {
        if (Interlocked.Exchange(ref _released, 1) == 0)
        {
            return store.LeaveAsync(bucket, slot, spend);
        }
        return spend is { } s ? store.AddSpendAsync(s.UserId, s.Month, s.Amount) : ValueTask.CompletedTask;
    }
}

/// <summary>An amount added to (or taken from) a user's month-to-date spend.</summary>
public readonly record struct SpendDelta(Guid UserId, string Month, decimal Amount);
