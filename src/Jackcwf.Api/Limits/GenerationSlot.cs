using System.Globalization;
using Microsoft.EntityFrameworkCore;

namespace Jackcwf.Api.Limits;

/// <summary>A held concurrency slot; disposing it frees the slot (once; later calls do nothing).</summary>
public sealed class GenerationSlot(ILimitStore store, string bucket, string slot) : IAsyncDisposable
{
    private int _released;
    private GenerationSlot? _with;

    /// <summary>
    /// Frees <paramref name="other"/> (still held) together with this slot, in the same round trip: a /v1
    /// stream's slot with its call's generation slot, whose release with the settlement comes when the
    /// provider's answer has ended. <paramref name="other"/> disposed first is freed alone, as before.
    /// </summary>
    internal void FreeTogetherWith(GenerationSlot other) => _with = other;

    public ValueTask DisposeAsync() => ReleaseAsync(null);

    /// <summary>
    /// Frees the slot and applies <paramref name="spend"/> (a settlement) in one store call; when the slot
    /// was already freed, the spend still is applied.
    /// </summary>
    public ValueTask ReleaseAsync(SpendDelta? spend)
    {
        if (Interlocked.Exchange(ref _released, 1) == 0)
        {
            if (_with is { } with && Interlocked.Exchange(ref with._released, 1) == 0)
            {
                // Both calls start before either is awaited: the store sends them together (one write, one read).
                return BothAsync(store.LeaveAsync(bucket, slot, spend), with.LeaveAsync());
            }
            return store.LeaveAsync(bucket, slot, spend);
        }
        return spend is { } s ? store.AddSpendAsync(s.UserId, s.Month, s.Amount) : ValueTask.CompletedTask;
    }

    private ValueTask LeaveAsync() => store.LeaveAsync(bucket, slot);

    private static async ValueTask BothAsync(ValueTask first, ValueTask second)
    {
        try
        {
            await first;
        }
        finally
        {
            await second;
        }
    }
}

/// <summary>An amount added to (or taken from) a user's month-to-date spend.</summary>
public readonly record struct SpendDelta(Guid UserId, string Month, decimal Amount);
