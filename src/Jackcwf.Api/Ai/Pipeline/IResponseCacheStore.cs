using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Text.Json.Serialization.Metadata;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Caching.Hybrid;

namespace Jackcwf.Api.Ai.Pipeline;

/// <summary>Where cached answers live: HybridCache (memory, plus Redis as the shared level when configured).</summary>
public interface IResponseCacheStore
{
    ValueTask<T?> GetAsync<T>(string key, CancellationToken cancellationToken) where T : class;

    ValueTask SetAsync<T>(string key, T value, TimeSpan ttl, CancellationToken cancellationToken) where T : class;
}
