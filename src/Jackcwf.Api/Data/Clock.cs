namespace Jackcwf.Api.Data;

/// <summary>
/// UTC timestamps at microsecond precision (what PostgreSQL keeps), strictly increasing within the
/// process so that keyset paging by time never sees two rows with the same instant from one replica.
/// </summary>
public static class Clock
{
    private static long _last;

    public static DateTime UtcNow()
    {
        var now = DateTime.UtcNow.Ticks / 10 * 10;
        while (true)
        {
            var last = Interlocked.Read(ref _last);
            var next = now > last ? now : last + 10;
            if (Interlocked.CompareExchange(ref _last, next, last) == last)
            {
                return new DateTime(next, DateTimeKind.Utc);
            }
        }
    }

    public static Guid NewId() => Guid.CreateVersion7();
}
