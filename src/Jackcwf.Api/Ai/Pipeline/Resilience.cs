using System.Runtime.CompilerServices;
using Jackcwf.Api.Telemetry;
using Microsoft.Extensions.AI;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;

namespace Jackcwf.Api.Ai.Pipeline;

/// <summary>
/// Retries transient provider failures (429, 5xx, timeouts, connection errors) with exponential
/// backoff and jitter (Polly), honouring the provider's <c>Retry-After</c> up to a bound, and only
/// before the first token: once output started, a retry would bill and show the text twice.
/// </summary>
public sealed class RetryingChatClient : DelegatingChatClient
{
    private readonly ResiliencePipeline _pipeline;

    public RetryingChatClient(IChatClient inner, ResilienceOptions options, string provider, JackcwfMetrics? metrics = null) : base(inner)
    {
        var maxRetryAfter = TimeSpan.FromSeconds(options.MaxRetryAfterSeconds);
        _pipeline = new ResiliencePipelineBuilder().AddRetry(new RetryStrategyOptions
        {
            MaxRetryAttempts = options.MaxRetries,
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = TimeSpan.FromMilliseconds(options.RetryBaseDelayMs),
            MaxDelay = maxRetryAfter,
            // A Retry-After beyond the bound is not waited for: the failure goes to the fallbacks (or the caller) at once.
            ShouldHandle = new PredicateBuilder().Handle<ProviderException>(e => e.Failure.Retryable && !(e.Failure.RetryAfter > maxRetryAfter)),
            DelayGenerator = args => ValueTask.FromResult(args.Outcome.Exception is ProviderException { Failure.RetryAfter: { } after } ? after : (TimeSpan?)null),
            OnRetry = args =>
            {
                metrics?.Retry(provider, (args.Outcome.Exception as ProviderException)?.Failure.Kind ?? "other");
                return ValueTask.CompletedTask;
            },
        }).Build();
    }

    public override Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        _pipeline.ExecuteAsync(async ct => await base.GetResponseAsync(messages, options, ct), cancellationToken).AsTask();

    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var started = await _pipeline.ExecuteAsync(
            async ct => await StartedStream.StartAsync(base.GetStreamingResponseAsync(messages, options, ct), ct), cancellationToken);
        await foreach (var u in started.RestAsync())
        {
            yield return u;
        }
    }
}

/// <summary>
/// One circuit breaker (Polly) per provider endpoint, shared by every model served there: when the
/// failure ratio over the sampling window passes the threshold, calls fail fast for the break
/// duration (straight to a fallback, or 503 <c>provider_unavailable</c> with <c>Retry-After</c>),
/// then one trial call half-opens it and a success closes it. Per replica by design.
/// </summary>
public sealed class ProviderCircuitBreakers(ResilienceOptions options)
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, (ResiliencePipeline Pipeline, CircuitBreakerStateProvider State)> _breakers = new(StringComparer.Ordinal);

    public TimeSpan BreakDuration => TimeSpan.FromSeconds(options.CircuitBreakSeconds);

    public ResiliencePipeline For(string endpoint) => _breakers.GetOrAdd(endpoint, _ =>
    {
        var state = new CircuitBreakerStateProvider();
        var pipeline = new ResiliencePipelineBuilder().AddCircuitBreaker(new CircuitBreakerStrategyOptions
        {
            FailureRatio = options.CircuitFailureRatio,
            MinimumThroughput = options.CircuitMinimumThroughput,
            SamplingDuration = TimeSpan.FromSeconds(options.CircuitSamplingSeconds),
            BreakDuration = BreakDuration,
            StateProvider = state,
            // What says the endpoint is unwell; a refused key or a bad request says nothing about it.
            ShouldHandle = new PredicateBuilder().Handle<ProviderException>(e => e.Failure.Retryable),
        }).Build();
        return (pipeline, state);
    }).Pipeline;

    /// <summary>0 closed, 1 open, 2 half-open (isolated counts as open), per endpoint.</summary>
    public IEnumerable<(string Endpoint, int State)> States() =>
        _breakers.Select(b => (b.Key, b.Value.State.CircuitState switch
        {
            CircuitState.Closed => 0,
            CircuitState.HalfOpen => 2,
            _ => 1,
        }));
}

/// <summary>Runs the start of each call through its endpoint's circuit breaker (<see cref="ProviderCircuitBreakers"/>).</summary>
public sealed class CircuitBreakerChatClient(IChatClient inner, ResiliencePipeline breaker, TimeSpan breakDuration, string provider) : DelegatingChatClient(inner)
{
    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        try
        {
            return await breaker.ExecuteAsync(async ct => await base.GetResponseAsync(messages, options, ct), cancellationToken);
        }
        catch (BrokenCircuitException e)
        {
            throw Open(e);
        }
    }

    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        StartedStream started;
        try
        {
            started = await breaker.ExecuteAsync(
                async ct => await StartedStream.StartAsync(base.GetStreamingResponseAsync(messages, options, ct), ct), cancellationToken);
        }
        catch (BrokenCircuitException e)
        {
            throw Open(e);
        }
        await foreach (var u in started.RestAsync())
        {
            yield return u;
        }
    }

    // The break duration bounds the wait: after it the next call is the half-open trial.
    private ProviderException Open(BrokenCircuitException e) => new(ProviderFailure.CircuitOpen(provider, breakDuration));
}

/// <summary>
/// Time to first token and idle time between tokens: a stalled provider ends the call as a
/// <c>timeout</c> failure within the limit (the caller keeps the text so far). One linked token
/// per call, re-armed on each update, instead of a timer of our own.
/// </summary>
public sealed class TimeoutChatClient(IChatClient inner, TimeSpan firstToken, TimeSpan idle, string provider) : DelegatingChatClient(inner)
{
    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(firstToken);
        var started = false;
        var e = base.GetStreamingResponseAsync(messages, options, cts.Token).GetAsyncEnumerator(cts.Token);
        await using (e)
        {
            while (true)
            {
                bool has;
                try
                {
                    has = await e.MoveNextAsync();
                }
                catch (Exception) when (cts.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
                {
                    throw new ProviderException(ProviderFailure.Stalled(provider, started, started ? idle : firstToken));
                }
                if (!has)
                {
                    yield break;
                }
                started |= StartedStream.IsStart(e.Current);
                cts.CancelAfter(started ? idle : firstToken);
                yield return e.Current;
            }
        }
    }
}

/// <summary>
/// A stream that ends without a finish reason is incomplete (the OpenAI SDK ends silently when the
/// server sends an error event inside the stream): it becomes a failure, never a "complete" answer.
/// </summary>
public sealed class StreamCompletenessChatClient(IChatClient inner, string provider) : DelegatingChatClient(inner)
{
    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var finished = false;
        var started = false;
        await foreach (var u in base.GetStreamingResponseAsync(messages, options, cancellationToken))
        {
            finished |= u.FinishReason is not null;
            started |= StartedStream.IsStart(u);
            yield return u;
        }
        if (!finished)
        {
            throw new ProviderException(ProviderFailure.Incomplete(provider, started));
        }
    }
}

/// <summary>
/// Tries the requested model, then its fallbacks in order, when a call fails before the first token
/// (its circuit open included). The call records the model that answered; its prices are the ones charged.
/// </summary>
public sealed class FallbackChatClient(IChatClient inner, IReadOnlyList<(ModelInfo Model, IChatClient Client)> fallbacks, JackcwfMetrics? metrics = null)
    : DelegatingChatClient(inner)
{
    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var call = ChatCall.Of(options);
        try
        {
            return await base.GetResponseAsync(messages, options, cancellationToken);
        }
        catch (ProviderException first) when (fallbacks.Count > 0)
        {
            var last = first;
            foreach (var (model, client) in fallbacks)
            {
                try
                {
                    var response = await client.GetResponseAsync(messages, options, cancellationToken);
                    Answered(call, model);
                    return response;
                }
                catch (ProviderException e)
                {
                    last = e;
                }
            }
            throw last;
        }
    }

    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var call = ChatCall.Of(options);
        StartedStream? started = null;
        ProviderException? failure = null;
        try
        {
            started = await StartedStream.StartAsync(base.GetStreamingResponseAsync(messages, options, cancellationToken), cancellationToken);
        }
        catch (ProviderException e) when (fallbacks.Count > 0)
        {
            failure = e;
        }
        for (var i = 0; started is null && i < fallbacks.Count; i++)
        {
            try
            {
                started = await StartedStream.StartAsync(fallbacks[i].Client.GetStreamingResponseAsync(messages, options, cancellationToken), cancellationToken);
                Answered(call, fallbacks[i].Model);
            }
            catch (ProviderException e)
            {
                failure = e;
            }
        }
        if (started is null)
        {
            throw failure!;
        }
        await foreach (var u in started.RestAsync())
        {
            yield return u;
        }
    }

    private void Answered(ChatCall call, ModelInfo model)
    {
        call.AnsweringModel = model;
        metrics?.Fallback(call.RequestedModel.Id, model.Id);
    }
}
