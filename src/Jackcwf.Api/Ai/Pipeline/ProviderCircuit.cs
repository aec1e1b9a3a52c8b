using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;

namespace Jackcwf.Api.Ai.Pipeline;

/// <summary>One endpoint's circuit: the Polly pipeline and what its state metric reports.</summary>
public sealed class ProviderCircuit
{
    private readonly CircuitBreakerStateProvider _state = new();
    private long _openUntilTicks;

    public ProviderCircuit(ResilienceOptions options, TimeSpan breakDuration)
    {
        BreakDuration = breakDuration;
        Pipeline = new ResiliencePipelineBuilder().AddCircuitBreaker(new CircuitBreakerStrategyOptions
        {
            FailureRatio = options.CircuitFailureRatio,
            MinimumThroughput = options.CircuitMinimumThroughput,
            SamplingDuration = TimeSpan.FromSeconds(options.CircuitSamplingSeconds),
            BreakDuration = breakDuration,
            StateProvider = _state,
            // What says the endpoint is unwell; a refused key or a bad request says nothing about it.
            ShouldHandle = new PredicateBuilder().Handle<ProviderException>(e => e.Failure.EndpointUnwell),
            OnOpened = args =>
            {
                Interlocked.Exchange(ref _openUntilTicks, (DateTime.UtcNow + args.BreakDuration).Ticks);
                return ValueTask.CompletedTask;
            },
        }).Build();
    }

    public ResiliencePipeline Pipeline { get; }

    public TimeSpan BreakDuration { get; }

    public CircuitState State => _state.CircuitState;

    /// <summary>
    /// The state as the metric says it: Polly moves an open circuit to half-open only when the next
    /// call arrives, so an open circuit past its break reports half-open (2), as the next call is a trial.
    /// </summary>
    public int StateValue => _state.CircuitState switch
    {
        CircuitState.Closed => 0,
        CircuitState.HalfOpen => 2,
        CircuitState.Open when DateTime.UtcNow.Ticks >= Interlocked.Read(ref _openUntilTicks) => 2,
        _ => 1,
    };
}
