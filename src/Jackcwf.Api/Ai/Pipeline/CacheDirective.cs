using System.Diagnostics;
using Microsoft.Extensions.AI;

namespace Jackcwf.Api.Ai.Pipeline;

/// <summary>What a client asked of the response cache (<c>Cache-Control</c>).</summary>
public enum CacheDirective
{
    /// <summary>Read and write the cache (when it is on).</summary>
    Default,
    /// <summary><c>no-cache</c>: do not answer from the cache, but store the fresh answer.</summary>
    NoCache,
    /// <summary><c>no-store</c>: neither read nor write.</summary>
    NoStore,
}

public static class CacheDirectives
{
    /// <summary>Reads a request's <c>Cache-Control</c>: <c>no-store</c> wins over <c>no-cache</c>.</summary>
    public static CacheDirective FromHeader(string? cacheControl) =>
        cacheControl is null ? CacheDirective.Default
        : cacheControl.Contains("no-store", StringComparison.OrdinalIgnoreCase) ? CacheDirective.NoStore
        : cacheControl.Contains("no-cache", StringComparison.OrdinalIgnoreCase) ? CacheDirective.NoCache
        : CacheDirective.Default;
}
