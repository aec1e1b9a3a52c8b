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

    public override IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        StreamObserver.Start(token => _pipeline.ExecuteAsync(
            async ct => await StartedStream.StartAsync(base.GetStreamingResponseAsync(messages, options, ct), ct), token),
            cancellationToken: cancellationToken);
}
