using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Ai.Embeddings;

/// <summary>Which model turns text into vectors, and how large the in-process vector store may grow.</summary>
public sealed class EmbeddingOptions
{
    public const string Section = "Embeddings";

    /// <summary>
    /// <c>provider/name</c> of the default embedding model: <see cref="LocalEmbeddingGenerator.ModelId"/>
    /// (shipped inside a NuGet package, no key), or an OpenAI or OpenAI-compatible (Ollama) one.
    /// </summary>
    public string Model { get; set; } = LocalEmbeddingGenerator.ModelId;

    /// <summary>Records kept per vector-store collection before the oldest written are evicted.</summary>
    public int VectorStoreMaxRecordsPerCollection { get; set; } = 10_000;

    /// <summary>Texts in one <c>POST /v1/embeddings</c> request.</summary>
    public int MaxInputsPerRequest { get; set; } = 256;
}

internal sealed class ValidateEmbeddingOptions(IOptions<ProvidersOptions> providers) : IValidateOptions<EmbeddingOptions>
{
    public ValidateOptionsResult Validate(string? name, EmbeddingOptions options)
    {
        var errors = new List<string>();
        var p = providers.Value;
        switch (options.Model.Split('/', 2))
        {
            case [_, _] when options.Model == LocalEmbeddingGenerator.ModelId:
                break;
            case [Providers.OpenAI, { Length: > 0 }]:
                if (string.IsNullOrWhiteSpace(p.OpenAI.ApiKey))
                {
                    errors.Add($"EMBEDDING_MODEL={options.Model} needs OPENAI_API_KEY.");
                }
                break;
            case [Providers.Ollama, { Length: > 0 }]:
                if (string.IsNullOrWhiteSpace(p.Ollama.BaseUrl))
                {
                    errors.Add($"EMBEDDING_MODEL={options.Model} needs OLLAMA_BASE_URL.");
                }
                break;
            default:
                errors.Add($"EMBEDDING_MODEL must be {LocalEmbeddingGenerator.ModelId}, openai/<model> or ollama/<model> (got \"{options.Model}\").");
                break;
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
