using System.Text.Json;
using Microsoft.Extensions.AI;

namespace Jackcwf.Api.OpenAiCompat;

/// <summary>
/// Microsoft.Extensions.AI results → OpenAI's chat completion wire format: finish reasons and tool
/// calls (whole in a completion; in a stream, one chunk per call carrying its full arguments, which
/// OpenAI clients accumulate by index exactly as they do the provider's smaller pieces).
/// </summary>
public static class ChatResponseWriting
{
    public static string FinishReason(ChatFinishReason reason) =>
        reason == ChatFinishReason.Length ? "length"
        : reason == ChatFinishReason.ContentFilter ? "content_filter"
        : reason == ChatFinishReason.ToolCalls ? "tool_calls"
        : "stop";

    public static ToolCallDto ToolCall(FunctionCallContent call, int? index) => new()
    {
        Index = index,
        Id = call.CallId,
        Type = "function",
        Function = new ToolCallFunctionDto
        {
            Name = call.Name,
            Arguments = call.Arguments is null ? "{}" : JsonSerializer.Serialize(call.Arguments, ArgumentsType),
        },
    };

    public static AssistantMessage Message(string text, IReadOnlyList<FunctionCallContent> calls) =>
        calls.Count == 0
            ? new AssistantMessage("assistant", text)
            : new AssistantMessage("assistant", text.Length == 0 ? null : text, null, calls.Select(c => ToolCall(c, null)).ToList());

    public static ChatCompletionChunk ToolCallChunk(string id, long created, string model, FunctionCallContent call, int index, bool first) =>
        new(id, "chat.completion.chunk", created, model,
            [new ChunkChoice(0, new ChunkDelta(first ? "assistant" : null, null, [ToolCall(call, index)]), null)], null);

    // The arguments are JSON values as the provider adapters parse them; AIJsonUtilities knows the shapes.
    private static readonly System.Text.Json.Serialization.Metadata.JsonTypeInfo ArgumentsType =
        AIJsonUtilities.DefaultOptions.GetTypeInfo(typeof(IDictionary<string, object?>));
}
