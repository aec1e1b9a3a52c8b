using System.Diagnostics;
using System.Security.Claims;
using System.Text;
using System.Text.Json;
using Jackcwf.Api.Accounts;
using Jackcwf.Api.Ai;
using Jackcwf.Api.Limits;
using Jackcwf.Api.Telemetry;
using Jackcwf.Api.Usage;
using Jackcwf.Api.Web;
using Microsoft.Extensions.AI;

namespace Jackcwf.Api.OpenAiCompat;

/// <summary>
/// The OpenAI-compatible gateway: <c>POST /v1/chat/completions</c> (streamed and not) and
/// <c>GET /v1/models</c>, routed to the configured providers through the same chat pipeline,
/// with limits, usage and cost recorded per key and user. Stateless: nothing is stored but the ledger.
/// </summary>
public static class OpenAiCompatApi
{
    public static IEndpointRouteBuilder MapOpenAiCompatApi(this IEndpointRouteBuilder app)
    {
        var v1 = app.MapGroup("/v1").WithTags("OpenAI-compatible gateway").RequireAuthorization();
        v1.MapGet("/models", ListModels).WithName("OpenAiListModels").WithSummary("The available models in OpenAI's list shape.");
        v1.MapPost("/chat/completions", ChatCompletionsAsync).WithName("OpenAiChatCompletions")
            .WithSummary("OpenAI chat completions, streamed (stream: true) or not; errors use OpenAI's error shape.")
            .Accepts<ChatCompletionRequest>("application/json");
        v1.MapEmbeddingsAndModelLookup();
        return app;
    }

    public static IResult ListModels(ModelCatalog catalog, Ai.Embeddings.EmbeddingModels embeddings)
    {
        var created = new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeSeconds();
        var list = new ModelListDto("list", catalog.Available.Select(m => new ModelEntryDto(m.Id, "model", created, m.Provider))
            .Concat(EmbeddingsApi.EmbeddingModelEntries(embeddings)).ToList());
        return Results.Json(list, OpenAiJsonContext.Default.ModelListDto);
    }

    public static async Task ChatCompletionsAsync(
        HttpContext http, ClaimsPrincipal user, ModelCatalog catalog, ChatClientProvider clients, LimitGuard guard,
        UsageLedger ledger, JackcwfMetrics metrics, ILoggerFactory loggers)
    {
        var accepted = Stopwatch.GetTimestamp();
        ChatCompletionRequest? request;
        try
        {
            request = await JsonSerializer.DeserializeAsync(http.Request.Body, OpenAiJsonContext.Default.ChatCompletionRequest, http.RequestAborted);
        }
        catch (JsonException e)
        {
            await ErrorAsync(http, 400, "invalid_json", $"We could not parse the JSON body of your request ({e.Path ?? "$"}).", e.Path?.TrimStart('$', '.'));
            return;
        }
        if (request is null)
        {
            await ErrorAsync(http, 400, "invalid_request", "The request body must be a JSON object.", null);
            return;
        }
        var model = catalog.Find(request.Model) ?? catalog.Available.FirstOrDefault(m => m.Name == request.Model);
        if (string.IsNullOrEmpty(request.Model) || model is null)
        {
            await ErrorAsync(http, 404, "model_not_found", $"The model '{Truncate(request.Model ?? "")}' does not exist; GET /v1/models lists the available ones.", "model");
            return;
        }
        if (request.N is > 1)
        {
            await ErrorAsync(http, 400, "invalid_value", "Only n=1 is supported.", "n");
            return;
        }
        var (messages, invalid, totalChars) = ToChatMessages(request.Messages);
        if (invalid is not null)
        {
            await ErrorAsync(http, 400, "invalid_value", invalid, "messages");
            return;
        }
        var limits = guard.Options;
        if (totalChars > limits.MaxMessageChars)
        {
            metrics.LimitRefused("input_size");
            await ErrorAsync(http, 400, "context_length_exceeded", $"The messages hold {totalChars} characters; this server accepts at most {limits.MaxMessageChars}.", "messages");
            return;
        }
        var maxTokens = request.MaxCompletionTokens ?? request.MaxTokens;
        if (maxTokens is < 1 || maxTokens > limits.MaxOutputTokens)
        {
            metrics.LimitRefused("output_tokens");
            await ErrorAsync(http, 400, "invalid_value", $"max_tokens must be between 1 and {limits.MaxOutputTokens} on this server.", "max_tokens");
            return;
        }
        var userId = user.Id();
        var (slot, refusal) = await guard.AcquireGenerationAsync(userId, model);
        if (refusal is not null)
        {
            await ErrorResponses.WriteRefusalAsync(http, refusal);
            return;
        }
        await using var _ = slot;

        var options = new ChatOptions
        {
            MaxOutputTokens = maxTokens ?? model.MaxOutputTokens ?? limits.MaxOutputTokens,
            Temperature = request.Temperature,
            TopP = request.TopP,
            StopSequences = request.Stop is { ValueKind: JsonValueKind.String } s ? [s.GetString()!]
                : request.Stop is { ValueKind: JsonValueKind.Array } a ? a.EnumerateArray().Select(x => x.GetString() ?? "").ToList() : null,
        };
        var id = "chatcmpl-" + Guid.NewGuid().ToString("N")[..24];
        var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var stream = request.Stream == true;
        var text = new StringBuilder();
        long inputTokens = 0, outputTokens = 0;
        var usageReported = false;
        string? finishReason = null;
        var started = false;
        ProviderFailure? failure = null;
        metrics.GenerationStarted(model.Provider);
        var status = "complete";
        try
        {
            await foreach (var update in clients.Get(model).GetStreamingResponseAsync(messages, options, http.RequestAborted))
            {
                foreach (var c in update.Contents)
                {
                    if (c is UsageContent u)
                    {
                        usageReported = true;
                        inputTokens = u.Details.InputTokenCount ?? inputTokens;
                        outputTokens = u.Details.OutputTokenCount ?? outputTokens;
                    }
                }
                if (update.FinishReason is { } fr)
                {
                    finishReason = fr == ChatFinishReason.Length ? "length" : fr == ChatFinishReason.ContentFilter ? "content_filter" : "stop";
                }
                var delta = update.Text;
                if (string.IsNullOrEmpty(delta))
                {
                    continue;
                }
                if (!started)
                {
                    started = true;
                    metrics.FirstToken(model.Provider, model.Id, Stopwatch.GetElapsedTime(accepted));
                    if (stream)
                    {
                        Chat.SseWriter.PrepareHeaders(http);
                    }
                }
                text.Append(delta);
                if (stream)
                {
                    await WriteChunkAsync(http, new ChatCompletionChunk(id, "chat.completion.chunk", created, model.Id,
                        [new ChunkChoice(0, new ChunkDelta(text.Length == delta.Length ? "assistant" : null, delta), null)], null));
                }
            }
            if (finishReason is null && model.Provider != Providers.Demo)
            {
                throw new IOException("The provider's stream ended without a finish reason.");
            }
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            status = "stopped";
        }
        catch (Exception ex)
        {
            failure = ProviderFailure.Classify(ex, model.Provider);
            if (started)
            {
                failure = failure.MidStream();
            }
            status = "failed";
            metrics.ProviderError(model.Provider, failure.Kind);
            loggers.CreateLogger("Jackcwf.Gateway").LogWarning("Gateway call to {Model} failed: {Kind} ({ExceptionType})", model.Id, failure.Kind, ex.GetType().Name);
        }

        if (!usageReported)
        {
            (inputTokens, outputTokens) = UsageEstimate.For(messages, text.Length, failure is not null);
        }
        var cost = model.Cost(inputTokens, outputTokens);
        metrics.Usage(model.Provider, model.Id, inputTokens, outputTokens, cost);
        metrics.GenerationFinished(model.Provider, model.Id, status, Stopwatch.GetElapsedTime(accepted));
        await ledger.RecordAsync(userId, user.ApiKeyId(), model.Id, UsageLedger.Gateway, (int)inputTokens, (int)outputTokens, cost);
        if (status == "stopped")
        {
            return;
        }
        var usage = new CompletionUsage((int)inputTokens, (int)outputTokens, (int)(inputTokens + outputTokens));

        if (failure is not null)
        {
            if (!started)
            {
                await ErrorAsync(http, failure.HttpStatus, $"provider_{failure.Kind}", failure.Detail, null);
                return;
            }
            if (stream)
            {
                await WriteDataAsync(http, JsonSerializer.Serialize(OpenAiError.Create(failure.Detail, "api_error", $"provider_{failure.Kind}"), OpenAiJsonContext.Default.OpenAiErrorResponse));
                return;
            }
            await ErrorAsync(http, failure.HttpStatus, $"provider_{failure.Kind}", failure.Detail, null);
            return;
        }
        if (!stream)
        {
            var completion = new ChatCompletion(id, "chat.completion", created, model.Id,
                [new CompletionChoice(0, new AssistantMessage("assistant", text.ToString()), finishReason ?? "stop")], usage);
            await Results.Json(completion, OpenAiJsonContext.Default.ChatCompletion).ExecuteAsync(http);
            return;
        }
        if (!started)
        {
            Chat.SseWriter.PrepareHeaders(http);
            await WriteChunkAsync(http, new ChatCompletionChunk(id, "chat.completion.chunk", created, model.Id, [new ChunkChoice(0, new ChunkDelta("assistant", ""), null)], null));
        }
        await WriteChunkAsync(http, new ChatCompletionChunk(id, "chat.completion.chunk", created, model.Id, [new ChunkChoice(0, new ChunkDelta(null, null), finishReason ?? "stop")], null));
        if (request.StreamOptions?.IncludeUsage == true)
        {
            await WriteChunkAsync(http, new ChatCompletionChunk(id, "chat.completion.chunk", created, model.Id, [], usage));
        }
        await WriteDataAsync(http, "[DONE]");
    }

    private static (List<ChatMessage> Messages, string? Invalid, int TotalChars) ToChatMessages(List<ChatCompletionMessage>? input)
    {
        var list = new List<ChatMessage>();
        if (input is null || input.Count == 0)
        {
            return (list, "messages must be a non-empty array.", 0);
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
                _ => (ChatRole?)null,
            };
            if (role is null)
            {
                return (list, $"messages[{i}].role must be system, developer, user or assistant.", 0);
            }
            string? content = m.Content switch
            {
                null => "",
                { ValueKind: JsonValueKind.Null } => "",
                { ValueKind: JsonValueKind.String } s => s.GetString(),
                { ValueKind: JsonValueKind.Array } parts => JoinTextParts(parts),
                _ => null,
            };
            if (content is null)
            {
                return (list, $"messages[{i}].content must be a string or an array of text parts.", 0);
            }
            total += content.Length;
            list.Add(new ChatMessage(role.Value, content));
        }
        return (list, null, total);
    }

    private static string? JoinTextParts(JsonElement parts)
    {
        var sb = new StringBuilder();
        foreach (var p in parts.EnumerateArray())
        {
            if (p.ValueKind != JsonValueKind.Object || !p.TryGetProperty("type", out var t) || t.GetString() != "text"
                || !p.TryGetProperty("text", out var text) || text.ValueKind != JsonValueKind.String)
            {
                return null;
            }
            sb.Append(text.GetString());
        }
        return sb.ToString();
    }

    private static Task ErrorAsync(HttpContext http, int status, string code, string message, string? param)
    {
        http.Items[WebExtensions.ProblemCodeItem] = code;
        return Results.Json(OpenAiError.Create(message, OpenAiError.TypeFor(status), code, param), OpenAiJsonContext.Default.OpenAiErrorResponse, statusCode: status)
            .ExecuteAsync(http);
    }

    private static Task WriteChunkAsync(HttpContext http, ChatCompletionChunk chunk) =>
        WriteDataAsync(http, JsonSerializer.Serialize(chunk, OpenAiJsonContext.Default.ChatCompletionChunk));

    private static async Task WriteDataAsync(HttpContext http, string data)
    {
        await http.Response.WriteAsync("data: " + data + "\n\n", http.RequestAborted);
        await http.Response.Body.FlushAsync(http.RequestAborted);
    }

    private static string Truncate(string s) => s.Length <= 80 ? s : s[..80] + "…";
}
