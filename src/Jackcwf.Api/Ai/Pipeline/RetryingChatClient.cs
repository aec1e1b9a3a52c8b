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
/// <para>
/// The first attempt runs without Polly (its pipeline allocates about 2 KB of state machines and
/// context per call, and almost every call succeeds at once): only a failure Polly would retry
/// enters the pipeline, whose first attempt replays that failure, so the retries, their delays and
/// their metric are Polly's as before.
/// </para>
/// </summary>
public sealed class RetryingChatClient : DelegatingChatClient
{
    private readonly ResiliencePipeline _pipeline;
    private readonly TimeSpan _maxRetryAfter;

    public RetryingChatClient(IChatClient inner, ResilienceOptions options, string provider, JackcwfMetrics? metrics = null) : base(inner)
    {
        var maxRetryAfter = _maxRetryAfter = TimeSpan.FromSeconds(options.MaxRetryAfterSeconds);
        _pipeline = new ResiliencePipelineBuilder().AddRetry(new RetryStrategyOptions
        {
            MaxRetryAttempts = options.MaxRetries,
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = TimeSpan.FromMilliseconds(options.RetryBaseDelayMs),
            MaxDelay = maxRetryAfter,
            // A Retry-After beyond the bound is not waited for: the failure goes to the fallbacks (or the caller) at once.
            ShouldHandle = new PredicateBuilder().Handle<ProviderException>(Retries),
            DelayGenerator = args => ValueTask.FromResult(args.Outcome.Exception is ProviderException { Failure.RetryAfter: { } after } ? after : (TimeSpan?)null),
            OnRetry = args =>
            {
                metrics?.Retry(provider, (args.Outcome.Exception as ProviderException)?.Failure.Kind ?? "other");
                return ValueTask.CompletedTask;
            },
        }).Build();
    }

    public override Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        ExecuteAsync(ct => new ValueTask<ChatResponse>(base.GetResponseAsync(messages, options, ct)), cancellationToken).AsTask();

    public override IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        StreamObserver.Start(token => ExecuteAsync(
            ct => new ValueTask<StartedStream>(StartedStream.StartAsync(base.GetStreamingResponseAsync(messages, options, ct), ct)), token),
            cancellationToken: cancellationToken);

    /// <summary>A failure Polly retries (its <c>ShouldHandle</c>): a Retry-After beyond the bound is not waited for.</summary>
    private bool Retries(ProviderException e) => e.Failure.Retryable && !(e.Failure.RetryAfter > _maxRetryAfter);

    /// <summary>The first attempt directly; after a failure Polly retries, Polly's pipeline from that failure on.</summary>
    private async ValueTask<T> ExecuteAsync<T>(Func<CancellationToken, ValueTask<T>> attempt, CancellationToken cancellationToken)
    {
        // As Polly does before its first attempt.
        cancellationToken.ThrowIfCancellationRequested();
        System.Runtime.ExceptionServices.ExceptionDispatchInfo failure;
        try
        {
            return await attempt(cancellationToken);
        }
        catch (ProviderException e) when (Retries(e))
        {
            failure = System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e);
        }
        return await RetryAsync(failure, attempt, cancellationToken);
    }

    private ValueTask<T> RetryAsync<T>(System.Runtime.ExceptionServices.ExceptionDispatchInfo first, Func<CancellationToken, ValueTask<T>> attempt, CancellationToken cancellationToken)
    {
        var replay = first;
        return _pipeline.ExecuteAsync(ct =>
        {
            if (replay is { } failed)
            {
                replay = null;
                failed.Throw();
            }
            return attempt(ct);
        }, cancellationToken);
    }
}
