using System.Collections.Concurrent;

namespace Jackcwf.Api.Limits;

/// <summary>
/// The per-account and per-key bucket names of the limits (<c>rate:user:{id}</c> and the like), made
/// once per account or key instead of once per request, and the Redis keys they become (with the
/// limits prefix). Bounded: past <see cref="Capacity"/> names a table starts again empty.
/// </summary>
internal static class BucketNames
{
    public const string UserRate = "rate:user:";
    public const string KeyRate = "rate:key:";
    public const string UserStreams = "streams:user:";
    public const string UserConcurrency = "concurrency:user:";

    /// <summary>Names held before a table is cleared (a few MiB at most).</summary>
    public const int Capacity = 20_000;

    private static readonly Table<(string Kind, Guid Id)> s_names = new(static n => n.Kind + n.Id.ToString());

    /// <summary><paramref name="kind"/> followed by <paramref name="id"/> (the <c>D</c> format), as an interpolated string makes it.</summary>
    public static string Get(string kind, Guid id) => s_names[(kind, id)];

    /// <summary>A name made once per key by <paramref name="make"/>; past <see cref="Capacity"/> names the table starts again empty.</summary>
    public sealed class Table<TKey>(Func<TKey, string> make) where TKey : notnull
    {
        private readonly ConcurrentDictionary<TKey, string> _names = new();

        public string this[TKey key]
        {
            get
            {
                if (_names.TryGetValue(key, out var name))
                {
                    return name;
                }
                if (_names.Count >= Capacity)
                {
                    _names.Clear();
                }
                return _names[key] = make(key);
            }
        }
    }
}
