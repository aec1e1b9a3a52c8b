using Jackcwf.Api.Data;
using Microsoft.Extensions.Time.Testing;

namespace Jackcwf.Api.Tests;

/// <summary>Stored timestamps and ids come from the injected clock, so a test can set the time.</summary>
public sealed class StorageTimeTests
{
    [Fact]
    public void Stored_timestamps_follow_the_injected_clock_at_microsecond_precision()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2030, 1, 2, 3, 4, 5, TimeSpan.Zero).AddTicks(1234567));

        var stamp = time.UtcNowForStorage();

        Assert.Equal(new DateTime(2030, 1, 2, 3, 4, 5, DateTimeKind.Utc).AddTicks(1234560), stamp);
        Assert.Equal(DateTimeKind.Utc, stamp.Kind);
    }

    [Fact]
    public void Stored_timestamps_strictly_increase_while_the_clock_stands_still()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero));

        var stamps = Enumerable.Range(0, 1000).Select(_ => time.UtcNowForStorage()).ToList();

        Assert.Equal(stamps.Count, stamps.Distinct().Count());
        Assert.Equal(stamps.Order(), stamps);
        Assert.All(stamps.Zip(stamps.Skip(1)), p => Assert.Equal(TimeSpan.FromMicroseconds(1), p.Second - p.First));
    }

    [Fact]
    public void Ids_carry_the_injected_time_so_they_sort_by_creation()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var first = time.NewId();
        time.Advance(TimeSpan.FromSeconds(1));
        var second = time.NewId();

        Assert.Equal(7, first.Version);
        // A version 7 GUID starts with the Unix time in milliseconds.
        Assert.Equal(time.GetUtcNow().ToUnixTimeMilliseconds(), Convert.ToInt64(second.ToString("N")[..12], 16));
        Assert.True(first.CompareTo(second) < 0);
        // RFC 9562's variant, and the random bits differ between ids made in the same millisecond.
        Assert.Equal(0x80, first.ToByteArray(bigEndian: true)[8] & 0xC0);
        Assert.NotEqual(time.NewId(), time.NewId());
        Assert.True(string.CompareOrdinal(first.ToString(), second.ToString()) < 0);
    }
}
