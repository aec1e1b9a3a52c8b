using Jackcwf.Api.Configuration;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.VectorData;

namespace Jackcwf.Api.Ai.Embeddings;

public static class EmbeddingsExtensions
{
    /// <summary>
    /// Registers <see cref="IEmbeddingGenerator{TInput,TEmbedding}"/> (string → float vectors, the
    /// default embedding model), <see cref="EmbeddingModels"/> (every served model, for
    /// <c>/v1/embeddings</c>) and a <see cref="VectorStore"/> (in memory, bounded) whose collections
    /// embed string vector properties with the default model.
    /// </summary>
    public static IHostApplicationBuilder AddEmbeddings(this IHostApplicationBuilder builder)
    {
        var s = builder.Services;
        s.AddSettings<EmbeddingOptions>(EmbeddingOptions.Section);
        s.AddSingleton<IValidateOptions<EmbeddingOptions>, ValidateEmbeddingOptions>();
        s.AddSingleton<EmbeddingMetrics>();
        s.AddSingleton<EmbeddingModels>();
        s.AddSingleton(sp => sp.GetRequiredService<EmbeddingModels>().Default);
        s.AddSingleton<VectorStore, InMemoryVectorStore>();
        return builder;
    }
}
