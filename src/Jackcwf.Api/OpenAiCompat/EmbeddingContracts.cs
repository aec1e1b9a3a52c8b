using System.Text.Json;
using System.Text.Json.Serialization;

namespace Jackcwf.Api.OpenAiCompat;

// OpenAI's embeddings wire format (POST /v1/embeddings) and the single-model shape (GET /v1/models/{id}).

public sealed class EmbeddingRequest
{
    public string? Model { get; set; }
    public JsonElement? Input { get; set; }
    public string? EncodingFormat { get; set; }
    public int? Dimensions { get; set; }
    public string? User { get; set; }

    /// <summary>Fields OpenAI's API does not define for this route: refused by name, never ignored.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unknown { get; set; }
}

public sealed record EmbeddingItem<T>(string Object, int Index, T Embedding);

public sealed record EmbeddingUsage(int PromptTokens, int TotalTokens);

public sealed record EmbeddingList<T>(string Object, IReadOnlyList<EmbeddingItem<T>> Data, string Model, EmbeddingUsage Usage);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, MaxDepth = 64)]
[JsonSerializable(typeof(EmbeddingRequest))]
[JsonSerializable(typeof(EmbeddingList<float[]>))]
[JsonSerializable(typeof(EmbeddingList<string>))]
[JsonSerializable(typeof(ModelEntryDto))]
public sealed partial class EmbeddingsJsonContext : JsonSerializerContext;
