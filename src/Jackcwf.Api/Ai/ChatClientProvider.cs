using System.ClientModel;
using System.ClientModel.Primitives;
using System.Collections.Concurrent;
using Anthropic;
using Jackcwf.Api.Configuration;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;
using OpenAI;

namespace Jackcwf.Api.Ai;

/// <summary>
/// One <see cref="IChatClient"/> pipeline per model, built on first use and cached: the provider's
/// official SDK adapter wrapped in OpenTelemetry. Provider URLs and keys come only from operator
/// configuration; nothing in a request can change where the server connects.
/// </summary>
public sealed class ChatClientProvider(
    IOptions<ProvidersOptions> options,
    IHttpClientFactory httpClientFactory,
    ILoggerFactory loggerFactory) : IDisposable
{
    public const string HttpClientName = "llm";
    private readonly ConcurrentDictionary<string, IChatClient> _clients = new(StringComparer.Ordinal);

    public IChatClient Get(ModelInfo model) => _clients.GetOrAdd(model.Id, _ => Build(model));

    private IChatClient Build(ModelInfo model)
    {
        var o = options.Value;
        IChatClient inner = model.Provider switch
        {
            Providers.Demo => new DemoEchoChatClient(TimeSpan.FromMilliseconds(o.Demo.ChunkDelayMs)),
            Providers.OpenAI => OpenAiCompatible(o.OpenAI.ApiKey!, o.OpenAI.BaseUrl ?? "https://api.openai.com/v1", model.Name),
            Providers.Ollama => OpenAiCompatible(string.IsNullOrEmpty(o.Ollama.ApiKey) ? "none" : o.Ollama.ApiKey, o.Ollama.BaseUrl!, model.Name),
            Providers.Anthropic => new AnthropicClient(new Anthropic.Core.ClientOptions
            {
                ApiKey = o.Anthropic.ApiKey!,
                BaseUrl = (o.Anthropic.BaseUrl ?? "https://api.anthropic.com").TrimEnd('/'),
                HttpClient = httpClientFactory.CreateClient(HttpClientName),
                // Failover and retries are the platform's decision (idempotency keys), not the SDK's.
                MaxRetries = 0,
                Timeout = TimeSpan.FromSeconds(o.TimeoutSeconds),
            }).AsIChatClient(model.Name, model.MaxOutputTokens ?? 4096),
            _ => throw new InvalidOperationException($"Unknown provider {model.Provider}."),
        };
        // Provider errors are reduced to what we classify (status, kind) before telemetry sees them:
        // a provider's error text may quote the API key, and must reach neither logs nor traces.
        return new SanitizingChatClient(inner, model.Provider).AsBuilder()
            .UseOpenTelemetry(loggerFactory, sourceName: "Experimental.Microsoft.Extensions.AI")
            .Build();
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
        foreach (var c in _clients.Values)
        {
            c.Dispose();
        }
    }
}

/// <summary>What went wrong with a provider call, in the terms the API and the metrics use.</summary>
public sealed record ProviderFailure(string Kind, int HttpStatus, string Title, string Detail)
{
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
        return ex switch
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
    }

    /// <summary>A failure after some text was already streamed.</summary>
    public ProviderFailure MidStream() => this with { Kind = Kind is "other" or "unavailable" ? "stream_broken" : Kind };

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

/// <summary>Replaces provider SDK exceptions (whose messages may quote secrets) by a classified <see cref="ProviderException"/>.</summary>
internal sealed class SanitizingChatClient(IChatClient inner, string provider) : DelegatingChatClient(inner)
{
    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        try
        {
            return await base.GetResponseAsync(messages, options, cancellationToken);
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
        try
        {
            e = base.GetStreamingResponseAsync(messages, options, cancellationToken).GetAsyncEnumerator(cancellationToken);
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
                    throw new ProviderException(ProviderFailure.Classify(ex, provider));
                }
                yield return e.Current;
            }
        }
    }
}
