using System.Globalization;
using Microsoft.EntityFrameworkCore;

namespace Jackcwf.Api.Limits;

/// <summary>Spend reserved for one call before the provider is asked; settled to the real cost after.</summary>
public sealed record SpendReservation(Guid UserId, decimal Amount);

/// <summary>The budget as the pipeline sees it: reserve before a call, settle after.</summary>
public interface ISpendLimiter
{
    /// <summary>The server's cap on output tokens, for calls that set none.</summary>
    int MaxOutputTokens { get; }

    ValueTask<(SpendReservation? Reservation, LimitRefusal? Refusal)> ReserveSpendAsync(Guid userId, decimal maxCost);

    /// <summary>
    /// Replaces the reservation by the call's real cost. With <paramref name="slot"/> (the call's generation
    /// slot, still held), the slot is released in the same store call: the call has ended.
    /// </summary>
    ValueTask SettleSpendAsync(SpendReservation reservation, decimal actualCost, GenerationSlot? slot = null);
}
