using System.ClientModel;
using System.ClientModel.Primitives;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;
using OpenAI;

namespace Jackcwf.Api.Ai.Embeddings;

/// <summary>
/// The embedding models this instance serves: the local one always, and the one
/// <c>EMBEDDING_MODEL</c> names when it is a provider's. <see cref="Default"/> is what
/// <c>IEmbeddingGenerator&lt;string, Embedding&lt;float&gt;&gt;</c> resolves to in DI.
/// Each generator is wrapped in OpenTelemetry and the latency metric.
/// </summary>
public sealed class EmbeddingModels : IDisposable
{
    public const string DefaultAlias = "default";

    private readonly IOptions<ProvidersOptions> _providers;
    private readonly IHttpClientFactory _httpClientFactory;
    private readonly ILoggerFactory _loggers;
    private readonly EmbeddingMetrics _metrics;
    private readonly ConcurrentDictionary<string, IEmbeddingGenerator<string, Embedding<float>>> _generators = new(StringComparer.Ordinal);

    public EmbeddingModels(IOptions<EmbeddingOptions> options, IOptions<ProvidersOptions> providers, IHttpClientFactory httpClientFactory, ILoggerFactory loggers, EmbeddingMetrics metrics)
    {
        _providers = providers;
        _httpClientFactory = httpClientFactory;
        _loggers = loggers;
        _metrics = metrics;
        DefaultId = options.Value.Model;
        Ids = DefaultId == LocalEmbeddingGenerator.ModelId ? [DefaultId] : [DefaultId, LocalEmbeddingGenerator.ModelId];
    }

    /// <summary>The id of the default embedding model (<c>EMBEDDING_MODEL</c>).</summary>
    public string DefaultId { get; }

    /// <summary>Every embedding model id served, the default first.</summary>
    public IReadOnlyList<string> Ids { get; }

    public IEmbeddingGenerator<string, Embedding<float>> Default => Get(DefaultId)!;

    /// <summary>The generator for <paramref name="id"/> (<c>default</c> or one of <see cref="Ids"/>), or null.</summary>
    public IEmbeddingGenerator<string, Embedding<float>>? Get(string? id)
    {
        if (id == DefaultAlias)
        {
            id = DefaultId;
        }
        return id is not null && Ids.Contains(id) ? _generators.GetOrAdd(id, Build) : null;
    }

    /// <summary>Resolves <c>default</c> to the model id; other ids are returned as they are.</summary>
    public string Resolve(string id) => id == DefaultAlias ? DefaultId : id;

    private IEmbeddingGenerator<string, Embedding<float>> Build(string id)
    {
        var slash = id.IndexOf('/');
        var (provider, name) = (id[..slash], id[(slash + 1)..]);
        var p = _providers.Value;
        IEmbeddingGenerator<string, Embedding<float>> inner = id == LocalEmbeddingGenerator.ModelId
            ? new LocalEmbeddingGenerator()
            : provider switch
            {
                Providers.OpenAI => OpenAiCompatible(p.OpenAI.ApiKey!, p.OpenAI.BaseUrl ?? "https://api.openai.com/v1", name),
                Providers.Ollama => OpenAiCompatible(string.IsNullOrEmpty(p.Ollama.ApiKey) ? "none" : p.Ollama.ApiKey, p.Ollama.BaseUrl!, name),
                _ => throw new InvalidOperationException($"No embedding provider for {id}."),
            };
        return new MeasuredEmbeddingGenerator(inner, id, _metrics).AsBuilder()
            .UseOpenTelemetry(_loggers, sourceName: "Experimental.Microsoft.Extensions.AI")
            .Build();
    }

    private IEmbeddingGenerator<string, Embedding<float>> OpenAiCompatible(string apiKey, string baseUrl, string name) =>
        new OpenAIClient(new ApiKeyCredential(apiKey), new OpenAIClientOptions
        {
            Endpoint = new Uri(baseUrl.TrimEnd('/')),
            Transport = new HttpClientPipelineTransport(_httpClientFactory.CreateClient(ChatClientProvider.HttpClientName)),
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
            // The SDK logs every request (URI, headers) unless told not to; failures are classified and logged here instead.
            ClientLoggingOptions = new ClientLoggingOptions { EnableLogging = false },
            NetworkTimeout = TimeSpan.FromSeconds(_providers.Value.TimeoutSeconds),
        }).GetEmbeddingClient(name).AsIEmbeddingGenerator();

    public void Dispose()
    {
        foreach (var g in _generators.Values)
        {
            g.Dispose();
        }
    }
}

/// <summary><c>jackcwf_embedding_duration_seconds</c> and <c>jackcwf_embedding_inputs_total</c> (docs/metrics.md).</summary>
public sealed class EmbeddingMetrics
{
    private readonly Histogram<double> _duration;
    private readonly Counter<long> _inputs;

    public EmbeddingMetrics(IMeterFactory meterFactory)
    {
        // The factory hands back the platform meter that JackcwfMetrics also uses (same name).
        var meter = meterFactory.Create(ServiceDefaults.Extensions.PlatformMeterName);
        _duration = meter.CreateHistogram("jackcwf_embedding_duration_seconds", unit: "s",
            description: "Time to embed one batch of texts, by model and outcome.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] });
        _inputs = meter.CreateCounter<long>("jackcwf_embedding_inputs", description: "Texts embedded, by model.");
    }

    public void Record(string model, int inputs, TimeSpan elapsed, bool ok)
    {
        _duration.Record(elapsed.TotalSeconds, new("model", model), new("outcome", ok ? "ok" : "error"));
        if (ok)
        {
            _inputs.Add(inputs, new KeyValuePair<string, object?>("model", model));
        }
    }
}

internal sealed class MeasuredEmbeddingGenerator(IEmbeddingGenerator<string, Embedding<float>> inner, string model, EmbeddingMetrics metrics)
    : DelegatingEmbeddingGenerator<string, Embedding<float>>(inner)
{
    public override async Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(
        IEnumerable<string> values, EmbeddingGenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        var list = values as IReadOnlyCollection<string> ?? values.ToList();
        var started = Stopwatch.GetTimestamp();
        var ok = false;
        try
        {
            var result = await base.GenerateAsync(list, options, cancellationToken);
            ok = true;
            return result;
        }
        catch (Exception ex) when (ex is not (OperationCanceledException or NotSupportedException or ProviderException))
        {
            // As for chat: a provider SDK's error text may quote the key, so only the classification leaves.
            throw new ProviderException(ProviderFailure.Classify(ex, model[..model.IndexOf('/')]));
        }
        finally
        {
            metrics.Record(model, list.Count, Stopwatch.GetElapsedTime(started), ok);
        }
    }
}
