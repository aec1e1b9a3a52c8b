using System.Globalization;
using Microsoft.EntityFrameworkCore;

namespace Jackcwf.Api.Limits;

/// <summary>A held concurrency slot; disposing it frees the slot.</summary>
public sealed class GenerationSlot(ILimitStore store, string bucket, string slot) : IAsyncDisposable
{
    private int _released;

    public ValueTask DisposeAsync() =>
        Interlocked.Exchange(ref _released, 1) == 0 ? store.LeaveAsync(bucket, slot) : ValueTask.CompletedTask;
}
