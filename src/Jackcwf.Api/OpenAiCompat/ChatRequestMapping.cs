using System.Text.Json;
using Jackcwf.Api.Ai;
using Microsoft.Extensions.AI;

namespace Jackcwf.Api.OpenAiCompat;

/// <summary>A request the gateway refuses: OpenAI's 400 with the offending parameter named.</summary>
public sealed record GatewayRequestError(string Code, string Message, string? Param);

/// <summary>An OpenAI chat request as Microsoft.Extensions.AI messages and options.</summary>
public sealed record MappedChatRequest(List<ChatMessage> Messages, ChatOptions Options, int TotalChars);

/// <summary>
/// OpenAI chat completions request → <see cref="ChatMessage"/>s and <see cref="ChatOptions"/>. Every
/// parameter is either carried to the provider or refused with OpenAI's 400 naming it; nothing is
/// dropped silently. What each provider can honour: docs/api.md. Images are passed on as URLs or
/// data URIs for the provider to read; this service never fetches them.
/// </summary>
public static class ChatRequestMapping
{
    // OpenAI parameters this gateway knows and cannot honour (as opposed to names OpenAI does not define).
    private static readonly HashSet<string> KnownUnsupported = new(StringComparer.Ordinal)
    {
        "logprobs", "top_logprobs", "logit_bias", "audio", "modalities", "prediction", "service_tier", "store",
        "metadata", "reasoning_effort", "web_search_options", "functions", "function_call", "verbosity",
        "prompt_cache_key", "safety_identifier",
    };

    public static GatewayRequestError? TryMap(ChatCompletionRequest request, ModelInfo model, out MappedChatRequest mapped)
    {
        mapped = null!;
        if (request.Unknown is { Count: > 0 } unknown)
        {
            var name = unknown.Keys.First();
            return KnownUnsupported.Contains(name)
                ? new("unsupported_parameter", $"The parameter '{name}' is not supported by this server.", name)
                : new("unsupported_parameter", $"Unrecognized request argument supplied: {Truncate(name)}.", Truncate(name));
        }
        if (request.N is > 1)
        {
            return new("invalid_value", "Only n=1 is supported.", "n");
        }
        var anthropic = model.Provider == Providers.Anthropic;
        var demo = model.Provider == Providers.Demo;
        if (anthropic)
        {
            // The Anthropic Messages API has no equivalent for these.
            foreach (var (value, name) in new (object?, string)[] { (request.Seed, "seed"), (request.FrequencyPenalty, "frequency_penalty"), (request.PresencePenalty, "presence_penalty"), (request.User, "user") })
            {
                if (value is not null)
                {
                    return new("unsupported_parameter", $"'{name}' is not supported by {model.Id} (Anthropic has no such parameter).", name);
                }
            }
        }

        var (messages, error, totalChars) = ToChatMessages(request.Messages, acceptsImages: !demo);
        if (error is not null)
        {
            return error;
        }
        var options = new ChatOptions
        {
            Temperature = request.Temperature,
            TopP = request.TopP,
            Seed = request.Seed,
            FrequencyPenalty = request.FrequencyPenalty,
            PresencePenalty = request.PresencePenalty,
            AllowMultipleToolCalls = request.ParallelToolCalls,
        };
        switch (request.Stop)
        {
            case null or { ValueKind: JsonValueKind.Null }:
                break;
            case { ValueKind: JsonValueKind.String } s:
                options.StopSequences = [s.GetString()!];
                break;
            case { ValueKind: JsonValueKind.Array } a when a.GetArrayLength() <= 4 && a.EnumerateArray().All(x => x.ValueKind == JsonValueKind.String):
                options.StopSequences = a.EnumerateArray().Select(x => x.GetString()!).ToList();
                break;
            default:
                return new("invalid_value", "stop must be a string or an array of up to 4 strings.", "stop");
        }
        if (request.User is { } user && !demo)
        {
            if (user.Length > 256)
            {
                return new("invalid_value", "user must be at most 256 characters.", "user");
            }
            // OpenAI-shaped providers take the caller's end-user id as is.
            options.RawRepresentationFactory = _ => new OpenAI.Chat.ChatCompletionOptions { EndUserId = user };
        }

        if (ToTools(request.Tools, out var tools, out var strictTools) is { } toolsError)
        {
            return toolsError;
        }
        options.Tools = tools;
        if (ToToolMode(request.ToolChoice, tools, out var mode) is { } modeError)
        {
            return modeError;
        }
        options.ToolMode = mode;
        if (demo && mode is RequiredChatToolMode)
        {
            return new("unsupported_parameter", $"{model.Id} never calls tools, so tool_choice cannot require one.", "tool_choice");
        }
        if (ToResponseFormat(request.ResponseFormat, out var format, out var strictFormat) is { } formatError)
        {
            return formatError;
        }
        if (strictTools || strictFormat)
        {
            // Microsoft.Extensions.AI's OpenAI adapter reads strict schema adherence from this key,
            // for the response format and the tools alike.
            (options.AdditionalProperties ??= [])["strict"] = true;
        }
        if (demo && format is ChatResponseFormatJson)
        {
            return new("unsupported_parameter", $"{model.Id} only echoes text and cannot answer in JSON.", "response_format");
        }
        options.ResponseFormat = format;
        mapped = new(messages, options, totalChars);
        return null;
    }

    private static (List<ChatMessage>, GatewayRequestError?, int) ToChatMessages(List<ChatCompletionMessage>? input, bool acceptsImages)
    {
        var list = new List<ChatMessage>();
        if (input is null || input.Count == 0)
        {
            return (list, new("invalid_value", "messages must be a non-empty array.", "messages"), 0);
        }
        var total = 0;
        for (var i = 0; i < input.Count; i++)
        {
            var m = input[i];
            var role = m.Role switch
            {
                "system" or "developer" => ChatRole.System,
                "user" => ChatRole.User,
                "assistant" => ChatRole.Assistant,
                "tool" => ChatRole.Tool,
                _ => (ChatRole?)null,
            };
            if (role is null)
            {
                return (list, new("invalid_value", $"messages[{i}].role must be system, developer, user, assistant or tool.", $"messages[{i}].role"), 0);
            }
            var contents = new List<AIContent>();
            switch (m.Content)
            {
                case null or { ValueKind: JsonValueKind.Null }:
                    break;
                case { ValueKind: JsonValueKind.String } s:
                    contents.Add(new TextContent(s.GetString()));
                    total += s.GetString()!.Length;
                    break;
                case { ValueKind: JsonValueKind.Array } parts:
                    var j = 0;
                    foreach (var p in parts.EnumerateArray())
                    {
                        var (part, error) = ToContentPart(p, $"messages[{i}].content[{j}]", role.Value, acceptsImages);
                        if (error is not null)
                        {
                            return (list, error, 0);
                        }
                        total += part is TextContent t ? t.Text.Length : 0;
                        contents.Add(part!);
                        j++;
                    }
                    break;
                default:
                    return (list, new("invalid_value", $"messages[{i}].content must be a string or an array of content parts.", $"messages[{i}].content"), 0);
            }

            if (role == ChatRole.Tool)
            {
                if (string.IsNullOrEmpty(m.ToolCallId))
                {
                    return (list, new("invalid_value", $"messages[{i}].tool_call_id is required for a tool message.", $"messages[{i}].tool_call_id"), 0);
                }
                var result = string.Concat(contents.OfType<TextContent>().Select(c => c.Text));
                list.Add(new ChatMessage(ChatRole.Tool, [new FunctionResultContent(m.ToolCallId, result)]));
                continue;
            }
            if (m.ToolCalls is { Count: > 0 } calls)
            {
                if (role != ChatRole.Assistant)
                {
                    return (list, new("invalid_value", $"messages[{i}].tool_calls is only valid on an assistant message.", $"messages[{i}].tool_calls"), 0);
                }
                for (var k = 0; k < calls.Count; k++)
                {
                    var c = calls[k];
                    if (string.IsNullOrEmpty(c.Id) || c.Function?.Name is not { Length: > 0 } name)
                    {
                        return (list, new("invalid_value", $"messages[{i}].tool_calls[{k}] needs an id and function.name.", $"messages[{i}].tool_calls[{k}]"), 0);
                    }
                    var args = ParseArguments(c.Function.Arguments);
                    if (args is null)
                    {
                        return (list, new("invalid_value", $"messages[{i}].tool_calls[{k}].function.arguments must be a JSON object.", $"messages[{i}].tool_calls[{k}].function.arguments"), 0);
                    }
                    total += c.Function.Arguments?.Length ?? 0;
                    contents.Add(new FunctionCallContent(c.Id, name, args));
                }
            }
            list.Add(new ChatMessage(role.Value, contents) { AuthorName = m.Name });
        }
        return (list, null, total);
    }

    private static (AIContent?, GatewayRequestError?) ToContentPart(JsonElement p, string path, ChatRole role, bool acceptsImages)
    {
        var type = p.ValueKind == JsonValueKind.Object && p.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        switch (type)
        {
            case "text" when p.TryGetProperty("text", out var text) && text.ValueKind == JsonValueKind.String:
                return (new TextContent(text.GetString()), null);
            case "image_url" when role == ChatRole.User:
                if (!acceptsImages)
                {
                    return (null, new("unsupported_parameter", "This model does not accept image input.", path));
                }
                var url = p.TryGetProperty("image_url", out var iu) && iu.ValueKind == JsonValueKind.Object && iu.TryGetProperty("url", out var u) && u.ValueKind == JsonValueKind.String
                    ? u.GetString()! : null;
                if (url is not null && url.StartsWith("data:image/", StringComparison.OrdinalIgnoreCase))
                {
                    try
                    {
                        return (new DataContent(url), null);
                    }
                    catch (FormatException)
                    {
                        return (null, new("invalid_value", $"{path}.image_url.url is not a valid base64 data URI.", $"{path}.image_url.url"));
                    }
                }
                // The provider reads the URL; this service never fetches it.
                if (url is not null && Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.Scheme is "https" or "http")
                {
                    return (new UriContent(uri, "image/*"), null);
                }
                return (null, new("invalid_value", $"{path}.image_url.url must be an http(s) URL or a data:image/… URI.", $"{path}.image_url.url"));
            case "text":
                return (null, new("invalid_value", $"{path}.text must be a string.", $"{path}.text"));
            default:
                return (null, new("unsupported_parameter", $"Content parts of type '{Truncate(type ?? "")}' are not supported here{(type == "image_url" ? " (images only in user messages)" : "")}.", $"{path}.type"));
        }
    }

    private static IDictionary<string, object?>? ParseArguments(string? json)
    {
        if (string.IsNullOrWhiteSpace(json))
        {
            return new Dictionary<string, object?>();
        }
        try
        {
            using var doc = JsonDocument.Parse(json);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                return null;
            }
            return doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value.Clone());
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static GatewayRequestError? ToTools(JsonElement? input, out List<AITool>? tools, out bool strict)
    {
        tools = null;
        strict = false;
        if (input is null or { ValueKind: JsonValueKind.Null })
        {
            return null;
        }
        if (input.Value.ValueKind != JsonValueKind.Array)
        {
            return new("invalid_value", "tools must be an array.", "tools");
        }
        tools = [];
        var i = 0;
        foreach (var t in input.Value.EnumerateArray())
        {
            if (t.ValueKind != JsonValueKind.Object || !t.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String)
            {
                return new("invalid_value", $"tools[{i}].type is required.", $"tools[{i}].type");
            }
            if (type.GetString() != "function")
            {
                return new("unsupported_parameter", $"Tools of type '{Truncate(type.GetString()!)}' are not supported; use function tools.", $"tools[{i}].type");
            }
            if (!t.TryGetProperty("function", out var f) || f.ValueKind != JsonValueKind.Object
                || !f.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String || name.GetString()!.Length is 0 or > 64)
            {
                return new("invalid_value", $"tools[{i}].function.name is required (1-64 characters).", $"tools[{i}].function.name");
            }
            var description = f.TryGetProperty("description", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString() : null;
            strict |= f.TryGetProperty("strict", out var st) && st.ValueKind == JsonValueKind.True;
            JsonElement schema;
            if (f.TryGetProperty("parameters", out var parameters) && parameters.ValueKind != JsonValueKind.Null)
            {
                if (parameters.ValueKind != JsonValueKind.Object)
                {
                    return new("invalid_value", $"tools[{i}].function.parameters must be a JSON Schema object.", $"tools[{i}].function.parameters");
                }
                schema = parameters.Clone();
            }
            else
            {
                schema = JsonDocument.Parse("""{"type":"object","properties":{}}""").RootElement;
            }
            tools.Add(AIFunctionFactory.CreateDeclaration(name.GetString()!, description, schema));
            i++;
        }
        return null;
    }

    private static GatewayRequestError? ToToolMode(JsonElement? input, List<AITool>? tools, out ChatToolMode? mode)
    {
        mode = null;
        switch (input)
        {
            case null or { ValueKind: JsonValueKind.Null }:
                return null;
            case { ValueKind: JsonValueKind.String } s:
                mode = s.GetString() switch
                {
                    "auto" => ChatToolMode.Auto,
                    "none" => ChatToolMode.None,
                    "required" => ChatToolMode.RequireAny,
                    _ => null,
                };
                if (mode is null)
                {
                    return new("invalid_value", "tool_choice must be none, auto, required or {type: function, function: {name}}.", "tool_choice");
                }
                break;
            case { ValueKind: JsonValueKind.Object } o when o.TryGetProperty("function", out var f) && f.ValueKind == JsonValueKind.Object
                && f.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String:
                mode = ChatToolMode.RequireSpecific(n.GetString()!);
                if (tools?.Any(t => t.Name == n.GetString()) != true)
                {
                    return new("invalid_value", $"tool_choice names '{Truncate(n.GetString()!)}', which is not in tools.", "tool_choice");
                }
                break;
            default:
                return new("invalid_value", "tool_choice must be none, auto, required or {type: function, function: {name}}.", "tool_choice");
        }
        if (mode is RequiredChatToolMode && tools is not { Count: > 0 })
        {
            return new("invalid_value", "tool_choice requires a tool but tools is empty.", "tool_choice");
        }
        return null;
    }

    private static GatewayRequestError? ToResponseFormat(JsonElement? input, out ChatResponseFormat? format, out bool strict)
    {
        format = null;
        strict = false;
        if (input is null or { ValueKind: JsonValueKind.Null })
        {
            return null;
        }
        var o = input.Value;
        var type = o.ValueKind == JsonValueKind.Object && o.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        switch (type)
        {
            case "text":
                format = ChatResponseFormat.Text;
                return null;
            case "json_object":
                format = ChatResponseFormat.Json;
                return null;
            case "json_schema":
                if (!o.TryGetProperty("json_schema", out var js) || js.ValueKind != JsonValueKind.Object
                    || !js.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String)
                {
                    return new("invalid_value", "response_format.json_schema.name is required.", "response_format.json_schema.name");
                }
                if (!js.TryGetProperty("schema", out var schema) || schema.ValueKind != JsonValueKind.Object)
                {
                    return new("invalid_value", "response_format.json_schema.schema must be a JSON Schema object.", "response_format.json_schema.schema");
                }
                var description = js.TryGetProperty("description", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString() : null;
                format = ChatResponseFormat.ForJsonSchema(schema.Clone(), name.GetString(), description);
                strict = js.TryGetProperty("strict", out var st) && st.ValueKind == JsonValueKind.True;
                return null;
            default:
                return new("invalid_value", "response_format.type must be text, json_object or json_schema.", "response_format.type");
        }
    }

    private static string Truncate(string s) => s.Length <= 64 ? s : s[..64] + "…";
}
