using System.Runtime.CompilerServices;
using Jackcwf.Api.Configuration;
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
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, ProviderCircuit> _breakers = new(StringComparer.Ordinal);

    public TimeSpan BreakDuration => TimeSpan.FromSeconds(options.CircuitBreakSeconds);

    public ProviderCircuit For(string endpoint) => _breakers.GetOrAdd(endpoint, _ => new ProviderCircuit(options, BreakDuration));

    /// <summary>0 closed, 1 open, 2 half-open (isolated counts as open), per endpoint.</summary>
    public IEnumerable<(string Endpoint, int State)> States() => _breakers.Select(b => (b.Key, b.Value.StateValue));
}

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

/// <summary>
/// Runs each call through its endpoint's circuit (<see cref="ProviderCircuitBreakers"/>). A streamed
/// call's outcome is the whole stream's: a stream cut after its first token counts as a failure of the
/// endpoint (it is still never retried). A half-open trial is judged at its first token instead, so
/// one long answer does not keep every other call failing fast; should it break later, that failure
/// is recorded on its own.
/// </summary>
public sealed class CircuitBreakerChatClient(IChatClient inner, ProviderCircuit circuit, string provider) : DelegatingChatClient(inner)
{
    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        try
        {
            return await circuit.Pipeline.ExecuteAsync(async ct => await base.GetResponseAsync(messages, options, ct), cancellationToken);
        }
        catch (BrokenCircuitException)
        {
            throw Open();
        }
    }

    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var started = new TaskCompletionSource<(StartedStream Stream, bool Trial)>(TaskCreationOptions.RunContinuationsAsynchronously);
        // The exception that ended the stream after its start (null: complete, or stopped by the caller).
        var ended = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var execution = circuit.Pipeline.ExecuteAsync(async ct =>
        {
            var trial = circuit.State == CircuitState.HalfOpen;
            started.SetResult((await StartedStream.StartAsync(base.GetStreamingResponseAsync(messages, options, ct), ct), trial));
            if (!trial && await ended.Task is { } failure)
            {
                throw failure; // hands the stream's failure to Polly, which counts it
            }
        }, cancellationToken).AsTask();
        if (await Task.WhenAny(started.Task, execution) != started.Task)
        {
            try
            {
                await execution; // failed before the first token, or refused by the open circuit
            }
            catch (BrokenCircuitException)
            {
                throw Open();
            }
        }
        var (stream, isTrial) = await started.Task;
        try
        {
            await foreach (var u in StreamObserver.Observe(stream.RestAsync(), null, ex =>
            {
                ended.TrySetResult(ex is OperationCanceledException ? null : ex);
                return ValueTask.CompletedTask;
            }, cancellationToken))
            {
                yield return u;
            }
        }
        finally
        {
            ended.TrySetResult(null);
            // The caller already has the stream's exception; this only waits for Polly to record it.
            await execution.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (isTrial && ended.Task.Result is { } late)
            {
                await RecordFailureAsync(late);
            }
        }
    }

    /// <summary>Records a failure seen after the call's own outcome was recorded (a half-open trial that broke later).</summary>
    private async ValueTask RecordFailureAsync(Exception failure)
    {
        var recorded = circuit.Pipeline.ExecuteAsync(static (e, _) => ValueTask.FromException(e), failure).AsTask();
        await recorded.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    // The break duration bounds the wait: after it the next call is the half-open trial.
    private ProviderException Open() => new(ProviderFailure.CircuitOpen(provider, circuit.BreakDuration));
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
