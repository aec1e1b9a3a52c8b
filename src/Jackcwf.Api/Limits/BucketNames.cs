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

    private static readonly ConcurrentDictionary<(string Kind, Guid Id), string> s_names = new();

    /// <summary><paramref name="kind"/> followed by <paramref name="id"/> (the <c>D</c> format), as an interpolated string makes it.</summary>
    public static string Get(string kind, Guid id)
    {
        if (s_names.TryGetValue((kind, id), out var name))
        {
            return name;
        }
        if (s_names.Count >= Capacity)
        {
            s_names.Clear();
        }
        name = kind + id.ToString();
        s_names[(kind, id)] = name;
        return name;
    }

    /// <summary>A table from a name to its prefixed form, bounded as the names are.</summary>
    public sealed class Prefixed(string prefix)
    {
        private readonly ConcurrentDictionary<string, string> _keys = new(StringComparer.Ordinal);

        public string this[string name]
        {
            get
            {
                if (_keys.TryGetValue(name, out var key))
                {
                    return key;
                }
                if (_keys.Count >= Capacity)
                {
                    _keys.Clear();
                }
                return _keys[name] = prefix + name;
            }
        }
    }
}
