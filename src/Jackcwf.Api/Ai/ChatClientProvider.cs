using System.ClientModel;
using System.ClientModel.Primitives;
using System.Collections.Concurrent;
using Anthropic;
using Jackcwf.Api.Ai.Pipeline;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;
using OpenAI;

namespace Jackcwf.Api.Ai;

/// <summary>
/// One <see cref="IChatClient"/> pipeline per model, built on first use and cached (see
/// <see cref="Build"/> for its steps). Provider URLs and keys come only from operator
/// configuration; nothing in a request can change where the server connects.
/// </summary>
public sealed class ChatClientProvider(
    IOptions<ProvidersOptions> options,
    IOptions<ResilienceOptions> resilience,
    IOptions<ResponseCacheOptions> cache,
    ModelCatalog catalog,
    ProviderCircuitBreakers breakers,
    IResponseCacheStore cacheStore,
    Limits.LimitGuard limits,
    Usage.UsageLedger ledger,
    Telemetry.JackcwfMetrics metrics,
    IHttpClientFactory httpClientFactory,
    ILoggerFactory loggerFactory,
    IServiceProvider services) : IDisposable
{
    public const string HttpClientName = "llm";
    private readonly ConcurrentDictionary<string, IChatClient> _pipelines = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, IChatClient> _providers = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, IReadOnlyList<ModelInfo>> _candidates = new(StringComparer.Ordinal);

    /// <summary>The pipeline of <paramref name="model"/>; calls carry a <see cref="ChatCall"/> (<see cref="ChatCall.Attach"/>).</summary>
    public IChatClient Get(ModelInfo model) => _pipelines.GetOrAdd(model.Id, _ => Build(model));

    /// <summary>The most a call to <paramref name="model"/> can cost, as its pipeline's budget step reckons it (the model or a fallback answering).</summary>
    public decimal MaxCost(ModelInfo model, IEnumerable<ChatMessage> messages, ChatOptions options) =>
        Pipeline.BudgetChatClient.MaxCost(Candidates(model), messages, options, limits.MaxOutputTokens);

    private IReadOnlyList<ModelInfo> Candidates(ModelInfo model) =>
        _candidates.GetOrAdd(model.Id, _ => [model, .. catalog.FallbacksOf(model)]);

    /// <summary>
    /// The pipeline, outermost first: usage and cost accounting (ledger) → budget reservation →
    /// telemetry → response cache → fallbacks, each model then behind its own provider chain
    /// (<see cref="ProviderChain"/>).
    /// </summary>
    private IChatClient Build(ModelInfo model)
    {
        var fallbacks = catalog.FallbacksOf(model).Select(f => (f, ProviderChain(f))).ToList();
        return new ChatClientBuilder(ProviderChain(model))
            .UseUsageAccounting(ledger, metrics)
            .UseBudget(limits, Candidates(model))
            .UseTelemetry(metrics)
            .UseResponseCache(cacheStore, cache.Value, metrics, services.GetService<IEmbeddingGenerator<string, Embedding<float>>>())
            .UseFallbacks(fallbacks, metrics)
            .Build();
    }

    /// <summary>
    /// One model at its provider, outermost first: retries (before the first token) → the endpoint's
    /// circuit breaker → stream-completeness check → first-token and idle timeouts → failure
    /// classification → OpenTelemetry → the provider's official SDK.
    /// </summary>
    private IChatClient ProviderChain(ModelInfo model) => _providers.GetOrAdd(model.Id, _ =>
    {
        var r = resilience.Value;
        var builder = new ChatClientBuilder(ProviderClient(model));
        if (r.MaxRetries > 0)
        {
            builder.UseRetries(r, model.Provider, metrics);
        }
        builder.UseCircuitBreaker(breakers, EndpointOf(options.Value, model.Provider), model.Provider);
        if (model.Provider != Providers.Demo)
        {
            builder.UseStreamCompleteness(model.Provider);
        }
        return builder
            .UseTimeouts(TimeSpan.FromSeconds(r.FirstTokenTimeoutSeconds), TimeSpan.FromSeconds(r.IdleTimeoutSeconds), model.Provider)
            // Provider errors are reduced to what we classify (status, kind) before telemetry sees them:
            // a provider's error text may quote the API key, and must reach neither logs nor traces.
            // The builder's first Use is the outermost, so classification comes after telemetry here.
            // Microsoft.Extensions.AI's OpenTelemetry client, without it holding every update of a
            // stream until the stream ends (ProviderTelemetryChatClient).
            .Use(inner => new ProviderTelemetryChatClient(inner, loggerFactory, "Experimental.Microsoft.Extensions.AI"))
            .UseFailureClassification(model.Provider)
            .Build();
    });

    /// <summary>
    /// The endpoint a provider's models are served from (its base URL): one circuit breaker each, and the
    /// <c>endpoint</c> label of its state metric, so without user info or query (they can hold credentials).
    /// </summary>
    public static string EndpointOf(ProvidersOptions o, string provider) => provider switch
    {
        Providers.OpenAI => $"openai {Public(o.OpenAI.BaseUrl ?? "https://api.openai.com/v1")}",
        Providers.Anthropic => $"anthropic {Public(o.Anthropic.BaseUrl ?? "https://api.anthropic.com")}",
        Providers.Ollama => $"ollama {Public(o.Ollama.BaseUrl)}",
        _ => provider,
    };

    private static string? Public(string? url) =>
        Uri.TryCreate(url, UriKind.Absolute, out var u) && (u.UserInfo.Length > 0 || u.Query.Length > 0 || u.Fragment.Length > 0)
            ? u.GetComponents(UriComponents.SchemeAndServer | UriComponents.Path, UriFormat.UriEscaped)
            : url;

    private IChatClient ProviderClient(ModelInfo model)
    {
        var o = options.Value;
        return model.Provider switch
        {
            Providers.Demo => new DemoEchoChatClient(TimeSpan.FromMilliseconds(o.Demo.ChunkDelayMs)),
            Providers.OpenAI => OpenAiCompatible(o.OpenAI.ApiKey!, o.OpenAI.BaseUrl ?? "https://api.openai.com/v1", model.Name),
            Providers.Ollama => OpenAiCompatible(string.IsNullOrEmpty(o.Ollama.ApiKey) ? "none" : o.Ollama.ApiKey, o.Ollama.BaseUrl!, model.Name),
            Providers.Anthropic => new AnthropicClient(new Anthropic.Core.ClientOptions
            {
                ApiKey = o.Anthropic.ApiKey!,
                BaseUrl = (o.Anthropic.BaseUrl ?? "https://api.anthropic.com").TrimEnd('/'),
                HttpClient = httpClientFactory.CreateClient(HttpClientName),
                // Retries are the pipeline's (before the first token only), never the SDK's.
                MaxRetries = 0,
                Timeout = TimeSpan.FromSeconds(o.TimeoutSeconds),
            }).AsIChatClient(model.Name, model.MaxOutputTokens ?? 4096),
            _ => throw new InvalidOperationException($"Unknown provider {model.Provider}."),
        };
    }

    private IChatClient OpenAiCompatible(string apiKey, string baseUrl, string modelName)
    {
        var clientOptions = new OpenAIClientOptions
        {
            Endpoint = new Uri(baseUrl.TrimEnd('/')),
            Transport = new HttpClientPipelineTransport(httpClientFactory.CreateClient(HttpClientName)),
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
            // The SDK logs every request (URI, headers) unless told not to; failures are classified and logged here instead.
            ClientLoggingOptions = new ClientLoggingOptions { EnableLogging = false },
            NetworkTimeout = TimeSpan.FromSeconds(options.Value.TimeoutSeconds),
        };
        var r = resilience.Value;
        if (options.Value.TimeoutSeconds >= Math.Max(r.FirstTokenTimeoutSeconds, r.IdleTimeoutSeconds))
        {
            // A stream's own deadlines (TimeoutChatClient) always come first: the SDK's timer per call and per read of the body would never fire.
            clientOptions.AddPolicy(OpenAiStreamingChatClient.NoStreamNetworkTimeout.Instance, PipelinePosition.PerCall);
        }
        // Microsoft.Extensions.AI's OpenAI client, with streamed answers read without the SDK's per-chunk model.
        return new OpenAiStreamingChatClient(new OpenAIClient(new ApiKeyCredential(apiKey), clientOptions), clientOptions, modelName);
    }

    public void Dispose()
    {
        foreach (var c in _providers.Values.Concat(_pipelines.Values))
        {
            c.Dispose();
        }
    }
}
