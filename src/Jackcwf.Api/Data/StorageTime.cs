using System.Runtime.CompilerServices;

namespace Jackcwf.Api.Data;

/// <summary>
/// Timestamps and ids for stored rows, from the injected <see cref="TimeProvider"/> (tests pass a
/// fake one): UTC at microsecond precision (what PostgreSQL keeps), strictly increasing per time
/// provider so that keyset paging by time never sees two rows with the same instant from one replica.
/// </summary>
public static class StorageTime
{
    private static readonly ConditionalWeakTable<TimeProvider, StrongBox<long>> Last = [];

    public static DateTime UtcNowForStorage(this TimeProvider time)
    {
        var last = Last.GetValue(time, _ => new StrongBox<long>());
        var now = time.GetUtcNow().UtcTicks / 10 * 10;
        while (true)
        {
            var seen = Interlocked.Read(ref last.Value);
            var next = now > seen ? now : seen + 10;
            if (Interlocked.CompareExchange(ref last.Value, next, seen) == seen)
            {
                return new DateTime(next, DateTimeKind.Utc);
            }
        }
    }

    /// <summary>A version 7 GUID: ordered by the time it was made, so new rows land at the end of the index.</summary>
    public static Guid NewId(this TimeProvider time) => Guid.CreateVersion7(time.GetUtcNow());
}
