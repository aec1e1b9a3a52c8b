using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Caching.Hybrid;

namespace Jackcwf.Api.Ai.Pipeline;

/// <summary>
/// The response cache's store: HybridCache (memory, and Redis when configured). While Redis is
/// <see cref="Backplane.RedisMemoryPressure.CacheWriteLimit"/> full (<paramref name="pressure"/>), new answers go to
/// memory only: Redis refuses every write once full (<c>noeviction</c>), and the limits and the event log must not
/// meet that because of a cache.
/// </summary>
public sealed class HybridResponseCacheStore(HybridCache cache, Backplane.RedisMemoryPressure? pressure = null) : IResponseCacheStore
{
    private static readonly HybridCacheEntryOptions ReadOnly = new()
    {
        Flags = HybridCacheEntryFlags.DisableLocalCacheWrite | HybridCacheEntryFlags.DisableDistributedCacheWrite,
    };

    // HybridCache has no plain "get": a factory that yields nothing, with writes disabled, is one.
    public ValueTask<T?> GetAsync<T>(string key, CancellationToken cancellationToken) where T : class =>
        cache.GetOrCreateAsync(key, static _ => ValueTask.FromResult<T?>(null), ReadOnly, cancellationToken: cancellationToken);

    public ValueTask SetAsync<T>(string key, T value, TimeSpan ttl, CancellationToken cancellationToken) where T : class =>
        cache.SetAsync(key, value, new HybridCacheEntryOptions
        {
            Expiration = ttl,
            LocalCacheExpiration = ttl,
            Flags = pressure?.CacheWritesPaused == true ? HybridCacheEntryFlags.DisableDistributedCacheWrite : HybridCacheEntryFlags.None,
        }, cancellationToken: cancellationToken);
}

/// <summary>HybridCache's serializer for the cache's records, source-generated.</summary>
internal sealed class JsonHybridSerializer<T>(JsonTypeInfo<T> type) : IHybridCacheSerializer<T>
{
    public T Deserialize(ReadOnlySequence<byte> source)
    {
        var reader = new Utf8JsonReader(source);
        return JsonSerializer.Deserialize(ref reader, type)!;
    }

    public void Serialize(T value, IBufferWriter<byte> target)
    {
        using var writer = new Utf8JsonWriter(target);
        JsonSerializer.Serialize(writer, value, type);
    }
}
