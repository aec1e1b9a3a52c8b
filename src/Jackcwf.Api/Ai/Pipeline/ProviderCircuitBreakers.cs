using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;

namespace Jackcwf.Api.Ai.Pipeline;

/// <summary>
/// One circuit breaker (Polly) per provider endpoint, shared by every model served there: when the
/// failure ratio over the sampling window passes the threshold, calls fail fast for the break
/// duration (straight to a fallback, or 503 <c>provider_unavailable</c> with <c>Retry-After</c>),
/// then one trial call half-opens it and a success closes it. Per replica by design.
/// </summary>
public sealed class ProviderCircuitBreakers(ResilienceOptions options)
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, ProviderCircuit> _breakers = new(StringComparer.Ordinal);

    public TimeSpan BreakDuration => TimeSpan.FromSeconds(options.CircuitBreakSeconds);

    public ProviderCircuit For(string endpoint) => _breakers.GetOrAdd(endpoint, _ => new ProviderCircuit(options, BreakDuration));

    /// <summary>0 closed, 1 open, 2 half-open (isolated counts as open), per endpoint.</summary>
    public IEnumerable<(string Endpoint, int State)> States() => _breakers.Select(b => (b.Key, b.Value.StateValue));
}
