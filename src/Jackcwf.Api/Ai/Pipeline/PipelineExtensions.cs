using Jackcwf.Api.Configuration;
using Jackcwf.Api.Limits;
using Jackcwf.Api.Telemetry;
using Jackcwf.Api.Usage;
using Microsoft.Extensions.AI;

namespace Jackcwf.Api.Ai.Pipeline;

/// <summary>The pipeline's steps as <see cref="ChatClientBuilder"/> extensions; the first added is the outermost.</summary>
public static class PipelineExtensions
{
    public static ChatClientBuilder UseUsageAccounting(this ChatClientBuilder builder, IUsageRecorder ledger, JackcwfMetrics? metrics = null) =>
        builder.Use(inner => new UsageAccountingChatClient(inner, ledger, metrics));

    public static ChatClientBuilder UseBudget(this ChatClientBuilder builder, ISpendLimiter guard, IReadOnlyList<ModelInfo> candidates) =>
        builder.Use(inner => new BudgetChatClient(inner, guard, candidates));

    public static ChatClientBuilder UseTelemetry(this ChatClientBuilder builder, JackcwfMetrics metrics) =>
        builder.Use(inner => new TelemetryChatClient(inner, metrics));

    public static ChatClientBuilder UseResponseCache(this ChatClientBuilder builder, IResponseCacheStore store, ResponseCacheOptions options,
        JackcwfMetrics? metrics = null, IEmbeddingGenerator<string, Embedding<float>>? embeddings = null) =>
        builder.Use(inner => new ResponseCachingChatClient(inner, store, options, metrics, embeddings));

    public static ChatClientBuilder UseFallbacks(this ChatClientBuilder builder, IReadOnlyList<(ModelInfo Model, IChatClient Client)> fallbacks, JackcwfMetrics? metrics = null) =>
        builder.Use(inner => new FallbackChatClient(inner, fallbacks, metrics));

    public static ChatClientBuilder UseRetries(this ChatClientBuilder builder, ResilienceOptions options, string provider, JackcwfMetrics? metrics = null) =>
        builder.Use(inner => new RetryingChatClient(inner, options, provider, metrics));

    public static ChatClientBuilder UseCircuitBreaker(this ChatClientBuilder builder, ProviderCircuitBreakers breakers, string endpoint, string provider) =>
        builder.Use(inner => new CircuitBreakerChatClient(inner, breakers.For(endpoint), provider));

    public static ChatClientBuilder UseStreamCompleteness(this ChatClientBuilder builder, string provider) =>
        builder.Use(inner => new StreamCompletenessChatClient(inner, provider));

    public static ChatClientBuilder UseTimeouts(this ChatClientBuilder builder, TimeSpan firstToken, TimeSpan idle, string provider) =>
        builder.Use(inner => new TimeoutChatClient(inner, firstToken, idle, provider));

    public static ChatClientBuilder UseFailureClassification(this ChatClientBuilder builder, string provider) =>
        builder.Use(inner => new FailureClassifyingChatClient(inner, provider));
}
