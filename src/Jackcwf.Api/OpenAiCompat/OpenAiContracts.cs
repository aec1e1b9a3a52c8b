using System.Text.Json;
using System.Text.Json.Serialization;

namespace Jackcwf.Api.OpenAiCompat;

// The OpenAI wire format, exactly: snake_case, and "finish_reason": null present in chunks.

public sealed class ChatCompletionRequest
{
    public string? Model { get; set; }
    public List<ChatCompletionMessage>? Messages { get; set; }
    public bool? Stream { get; set; }
    public StreamOptions? StreamOptions { get; set; }
    public int? MaxTokens { get; set; }
    public int? MaxCompletionTokens { get; set; }
    public float? Temperature { get; set; }
    public float? TopP { get; set; }
    public JsonElement? Stop { get; set; }
    public int? N { get; set; }
    public string? User { get; set; }
    public long? Seed { get; set; }
    public float? FrequencyPenalty { get; set; }
    public float? PresencePenalty { get; set; }
    public JsonElement? Tools { get; set; }
    public JsonElement? ToolChoice { get; set; }
    public bool? ParallelToolCalls { get; set; }
    public JsonElement? ResponseFormat { get; set; }

    /// <summary>Every other field: refused by name (see ChatRequestMapping), never silently dropped.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unknown { get; set; }
}

public sealed class ChatCompletionMessage
{
    public string? Role { get; set; }
    public JsonElement? Content { get; set; }
    public string? Name { get; set; }
    public List<ToolCallDto>? ToolCalls { get; set; }
    public string? ToolCallId { get; set; }
}

public sealed class ToolCallDto
{
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? Index { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Id { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Type { get; set; }
    public ToolCallFunctionDto? Function { get; set; }
}

public sealed class ToolCallFunctionDto
{
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Name { get; set; }
    public string? Arguments { get; set; }
}

public sealed class StreamOptions
{
    public bool? IncludeUsage { get; set; }
}

public sealed record CompletionUsage(int PromptTokens, int CompletionTokens, int TotalTokens);

public sealed record AssistantMessage(
    string Role,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Content,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Refusal = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<ToolCallDto>? ToolCalls = null);

public sealed record CompletionChoice(int Index, AssistantMessage Message, string? FinishReason, [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] object? Logprobs = null);

public sealed record ChatCompletion(string Id, string Object, long Created, string Model, IReadOnlyList<CompletionChoice> Choices, CompletionUsage Usage);

public sealed record ChunkDelta(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Role,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Content,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<ToolCallDto>? ToolCalls = null);

public sealed record ChunkChoice(int Index, ChunkDelta Delta, string? FinishReason);

public sealed record ChatCompletionChunk(
    string Id, string Object, long Created, string Model, IReadOnlyList<ChunkChoice> Choices,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] CompletionUsage? Usage);

public sealed record ModelEntryDto(string Id, string Object, long Created, string OwnedBy);

public sealed record ModelListDto(string Object, IReadOnlyList<ModelEntryDto> Data);

public sealed record OpenAiErrorBody(string Message, string Type, [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Param, string? Code);

public sealed record OpenAiErrorResponse(OpenAiErrorBody Error);

public static class OpenAiError
{
    public static OpenAiErrorResponse Create(string message, string type, string? code, string? param = null) =>
        new(new OpenAiErrorBody(message, type, param, code));

    public static string TypeFor(int status) => status switch
    {
        400 or 404 or 413 or 415 or 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        429 => "rate_limit_error",
        _ => "api_error",
    };
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, MaxDepth = 64)]
[JsonSerializable(typeof(ChatCompletionRequest))]
[JsonSerializable(typeof(ChatCompletion))]
[JsonSerializable(typeof(ChatCompletionChunk))]
[JsonSerializable(typeof(ModelListDto))]
[JsonSerializable(typeof(OpenAiErrorResponse))]
public sealed partial class OpenAiJsonContext : JsonSerializerContext;
