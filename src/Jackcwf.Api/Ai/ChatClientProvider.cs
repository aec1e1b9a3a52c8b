using System.ClientModel;
using System.ClientModel.Primitives;
using System.Collections.Concurrent;
using Anthropic;
using Jackcwf.Api.Ai.Pipeline;
using Jackcwf.Api.Configuration;
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

    /// <summary>The pipeline of <paramref name="model"/>; calls carry a <see cref="ChatCall"/> (<see cref="ChatCall.Attach"/>).</summary>
    public IChatClient Get(ModelInfo model) => _pipelines.GetOrAdd(model.Id, _ => Build(model));

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
            .UseBudget(limits, [model, .. fallbacks.Select(f => f.f)])
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
            .UseOpenTelemetry(loggerFactory, sourceName: "Experimental.Microsoft.Extensions.AI")
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
        var client = new OpenAIClient(new ApiKeyCredential(apiKey), new OpenAIClientOptions
        {
            Endpoint = new Uri(baseUrl.TrimEnd('/')),
            Transport = new HttpClientPipelineTransport(httpClientFactory.CreateClient(HttpClientName)),
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
            NetworkTimeout = TimeSpan.FromSeconds(options.Value.TimeoutSeconds),
        });
        return client.GetChatClient(modelName).AsIChatClient();
    }

    public void Dispose()
    {
        foreach (var c in _providers.Values.Concat(_pipelines.Values))
        {
            c.Dispose();
        }
    }
}

/// <summary>What went wrong with a provider call, in the terms the API and the metrics use.</summary>
public sealed record ProviderFailure(string Kind, int HttpStatus, string Title, string Detail)
{
    /// <summary>How long the provider (or our circuit breaker) asked us to wait, when it said.</summary>
    public TimeSpan? RetryAfter { get; init; }

    /// <summary>Set when our circuit breaker refused the call without reaching the provider.</summary>
    public bool IsCircuitOpen { get; init; }

    /// <summary>Worth another attempt (rate limits, outages, timeouts) and a sign of an unwell endpoint.</summary>
    public bool Retryable => !IsCircuitOpen && Kind is "rate_limited" or "unavailable" or "timeout";

    /// <summary>Counts against the endpoint's circuit: what is worth a retry, and a stream cut after its first token (never retried).</summary>
    public bool EndpointUnwell => Retryable || Kind == "stream_broken";

    public static ProviderFailure Classify(Exception ex, string provider)
    {
        if (ex is ProviderException pe)
        {
            return pe.Failure;
        }
        var status = ex switch
        {
            ClientResultException c => c.Status,
            Anthropic.Exceptions.AnthropicApiException a => (int)a.StatusCode,
            HttpRequestException { StatusCode: { } s } => (int)s,
            _ => 0,
        };
        var name = ProviderDisplay(provider);
        ProviderFailure failure = ex switch
        {
            TimeoutException or TaskCanceledException or OperationCanceledException =>
                new("timeout", 504, "The model provider timed out", $"{name} did not answer in time. Try again in a moment."),
            _ when status is 401 or 403 =>
                new("auth", 502, "The model provider refused the credentials", $"{name} rejected this server's API key; an operator must fix the configuration."),
            _ when status == 429 =>
                new("rate_limited", 503, "The model provider is rate limiting", $"{name} is rate limiting this server. Try again shortly."),
            _ when status is 400 or 404 or 413 or 422 =>
                new("bad_request", 502, "The model provider rejected the request", $"{name} rejected the request (HTTP {status})."),
            _ when status is 502 or 503 or 529 =>
                new("unavailable", 503, "The model provider is unavailable", $"{name} is unavailable (HTTP {status}). Try again shortly."),
            _ when status == 504 =>
                new("timeout", 504, "The model provider timed out", $"{name} timed out (HTTP 504). Try again shortly."),
            _ when status >= 500 =>
                new("unavailable", 502, "The model provider failed", $"{name} returned an error (HTTP {status})."),
            HttpRequestException or System.Net.Sockets.SocketException or Anthropic.Exceptions.AnthropicIOException or IOException =>
                new("unavailable", 503, "The model provider is unreachable", $"Could not reach {name}. Try again shortly."),
            _ when status == 0 && ex is ClientResultException =>
                new("unavailable", 503, "The model provider is unreachable", $"Could not reach {name}. Try again shortly."),
            _ => new("other", 502, "The model provider failed", $"{name} failed while answering."),
        };
        return failure with { RetryAfter = RetryAfterOf(ex) };
    }

    /// <summary>A failure after some text was already streamed.</summary>
    public ProviderFailure MidStream() => this with { Kind = Kind is "other" or "unavailable" ? "stream_broken" : Kind };

    /// <summary>Our circuit breaker refused the call: the endpoint failed too often lately.</summary>
    public static ProviderFailure CircuitOpen(string provider, TimeSpan retryAfter) =>
        new("unavailable", 503, "The model provider is unavailable",
            $"{ProviderDisplay(provider)} failed repeatedly and is not being called for now. Try again in {Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds))} s.")
        {
            RetryAfter = retryAfter,
            IsCircuitOpen = true,
        };

    /// <summary>No token within the first-token timeout, or none within the idle timeout after the answer started.</summary>
    public static ProviderFailure Stalled(string provider, bool started, TimeSpan limit) => started
        ? new("timeout", 504, "The model provider stopped sending", $"{ProviderDisplay(provider)} sent nothing for {limit.TotalSeconds:0.#} s; the answer so far is kept.")
        : new("timeout", 504, "The model provider timed out", $"{ProviderDisplay(provider)} did not start answering within {limit.TotalSeconds:0.#} s.");

    /// <summary>The stream ended without a finish reason.</summary>
    public static ProviderFailure Incomplete(string provider, bool started) => started
        ? new("stream_broken", 502, "The model provider failed", $"{ProviderDisplay(provider)} ended the answer before it was complete.")
        : new("unavailable", 502, "The model provider failed", $"{ProviderDisplay(provider)} ended the stream without answering.");

    private static TimeSpan? RetryAfterOf(Exception ex)
    {
        if (ex is not ClientResultException c || c.GetRawResponse()?.Headers is not { } headers)
        {
            return null;
        }
        if (headers.TryGetValue("retry-after-ms", out var ms) && double.TryParse(ms, System.Globalization.CultureInfo.InvariantCulture, out var m) && m >= 0)
        {
            return TimeSpan.FromMilliseconds(m);
        }
        return headers.TryGetValue("retry-after", out var s) && double.TryParse(s, System.Globalization.CultureInfo.InvariantCulture, out var sec) && sec >= 0
            ? TimeSpan.FromSeconds(sec)
            : null;
    }

    private static string ProviderDisplay(string provider) => provider switch
    {
        Providers.OpenAI => "OpenAI",
        Providers.Anthropic => "Anthropic",
        Providers.Ollama => "The OpenAI-compatible model server",
        _ => "The model provider",
    };
}

/// <summary>A provider failure with no provider text in it (see <see cref="SanitizingChatClient"/>).</summary>
public sealed class ProviderException(ProviderFailure failure) : Exception(failure.Detail)
{
    public ProviderFailure Failure { get; } = failure;
}

/// <summary>
/// Failure classification at the provider boundary: SDK exceptions (whose messages may quote secrets)
/// become a classified <see cref="ProviderException"/>, marked mid-stream once text went out. Also
/// takes the pipeline's <see cref="Pipeline.ChatCall"/> out of the options the provider sees.
/// </summary>
public sealed class FailureClassifyingChatClient(IChatClient inner, string provider) : DelegatingChatClient(inner)
{
    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        try
        {
            return await base.GetResponseAsync(messages, Pipeline.ChatCall.Strip(options), cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            throw new ProviderException(ProviderFailure.Classify(ex, provider));
        }
    }

    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        IAsyncEnumerator<ChatResponseUpdate> e;
        var started = false;
        try
        {
            e = base.GetStreamingResponseAsync(messages, Pipeline.ChatCall.Strip(options), cancellationToken).GetAsyncEnumerator(cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            throw new ProviderException(ProviderFailure.Classify(ex, provider));
        }
        await using (e)
        {
            while (true)
            {
                try
                {
                    if (!await e.MoveNextAsync())
                    {
                        yield break;
                    }
                }
                catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
                {
                    var failure = ProviderFailure.Classify(ex, provider);
                    throw new ProviderException(started ? failure.MidStream() : failure);
                }
                started |= Pipeline.StartedStream.IsStart(e.Current);
                yield return e.Current;
            }
        }
    }
}
