using System.Text;
using System.Text.Json;
using Jackcwf.Api.Ai;
using Jackcwf.Api.Ai.Pipeline;
using Jackcwf.Api.ErrorHandling;
using Jackcwf.Api.Limits;
using Jackcwf.Api.Web;
using Microsoft.Extensions.AI;

namespace Jackcwf.Api.OpenAiCompat;

/// <summary>
/// A /v1 chat completion through the model pipeline (which accounts, limits, caches and retries):
/// here only the two ways of writing its output. A non-streamed request calls the provider without
/// streaming; a streamed one writes each delta into a pre-built chunk, encoding only the new text.
/// </summary>
internal static class GatewayCompletions
{
    public static async Task CompleteAsync(HttpContext http, IChatClient client, ChatCall call, List<ChatMessage> messages, ChatOptions options, ILogger logger)
    {
        ChatResponse response;
        try
        {
            response = await client.GetResponseAsync(messages, options, http.RequestAborted);
        }
        catch (Exception ex)
        {
            await FailedAsync(http, call, ex, logger);
            return;
        }
        http.Response.Headers["X-Cache"] = call.CacheStatus;
        var completion = new ChatCompletion(NewId(), "chat.completion", DateTimeOffset.UtcNow.ToUnixTimeSeconds(), call.AnsweringModel.Id,
            [new CompletionChoice(0, ChatResponseWriting.Message(response.Text, response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().ToList()),
                FinishReason(response.FinishReason))], Usage(call));
        await Results.Json(completion, OpenAiJsonContext.Default.ChatCompletion).ExecuteAsync(http);
    }

    public static async Task StreamAsync(HttpContext http, IChatClient client, ChatCall call, List<ChatMessage> messages, ChatOptions options, bool includeUsage, ILogger logger)
    {
        var id = NewId();
        var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        // The stream's headers go as soon as a provider accepts the call (before its first token); a
        // cache hit or the in-process demo model sends them with the first chunk.
        var headers = new EarlyHeaders(http, call);
        ChunkWriter? writer = null;
        ChatFinishReason? finish = null;
        var toolCalls = 0;
        try
        {
            using (ProviderAnswered.Listen(headers.Send))
            {
                await foreach (var update in client.GetStreamingResponseAsync(messages, options, http.RequestAborted))
                {
                    finish = update.FinishReason ?? finish;
                    foreach (var toolCall in update.Contents.OfType<FunctionCallContent>())
                    {
                        writer ??= await ChunkWriter.StartAsync(http, headers, id, created, call.AnsweringModel.Id);
                        await writer.ChunkAsync(ChatResponseWriting.ToolCallChunk(id, created, call.AnsweringModel.Id, toolCall, toolCalls++, first: false));
                    }
                    if (update.Text is not { Length: > 0 } delta)
                    {
                        continue;
                    }
                    writer ??= await ChunkWriter.StartAsync(http, headers, id, created, call.AnsweringModel.Id);
                    await writer.DeltaAsync(delta);
                }
            }
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            return;
        }
        catch (Exception ex) when (!headers.Sent)
        {
            await FailedAsync(http, call, ex, logger);
            return;
        }
        catch (Exception ex)
        {
            // The headers (and maybe output) already went: the error goes in the stream, as OpenAI's own API does.
            try
            {
                await headers.AwaitAsync();
            }
            catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
            {
                return;
            }
            var failure = ProviderFailure.Classify(ex, call.AnsweringModel.Provider);
            logger.LogWarning("Gateway call to {Model} failed {When}: {Kind} ({ExceptionType})", call.AnsweringModel.Id,
                writer is null ? "before its first token" : "mid-stream", failure.Kind, ex.GetType().Name);
            http.Items[WebExtensions.ProblemCodeItem] = $"provider_{failure.Kind}";
            await OpenAiCompatApi.WriteDataAsync(http, JsonSerializer.Serialize(
                OpenAiError.Create(failure.Detail, "api_error", $"provider_{failure.Kind}"), OpenAiJsonContext.Default.OpenAiErrorResponse));
            return;
        }
        writer ??= await ChunkWriter.StartAsync(http, headers, id, created, call.AnsweringModel.Id);
        await writer.ChunkAsync(new ChatCompletionChunk(id, "chat.completion.chunk", created, call.AnsweringModel.Id,
            [new ChunkChoice(0, new ChunkDelta(null, null), FinishReason(finish))], null));
        if (includeUsage)
        {
            await writer.ChunkAsync(new ChatCompletionChunk(id, "chat.completion.chunk", created, call.AnsweringModel.Id, [], Usage(call)));
        }
        await OpenAiCompatApi.WriteDataAsync(http, "[DONE]");
    }

    /// <summary>A failure before any output: an OpenAI-shaped error response.</summary>
    private static async Task FailedAsync(HttpContext http, ChatCall call, Exception ex, ILogger logger)
    {
        if (ex is OperationCanceledException && http.RequestAborted.IsCancellationRequested)
        {
            return;
        }
        if (ex is LimitRefusedException refused)
        {
            await ErrorResponses.WriteRefusalAsync(http, refused.Refusal);
            return;
        }
        var failure = ProviderFailure.Classify(ex, call.AnsweringModel.Provider);
        logger.LogWarning("Gateway call to {Model} failed: {Kind} ({ExceptionType})", call.AnsweringModel.Id, failure.Kind, ex.GetType().Name);
        if (failure.RetryAfter is { } after)
        {
            http.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(after.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        http.Response.Headers["X-Cache"] = call.CacheStatus;
        await OpenAiCompatApi.ErrorAsync(http, failure.HttpStatus, $"provider_{failure.Kind}", failure.Detail, null);
    }

    private static CompletionUsage Usage(ChatCall call) =>
        new((int)call.InputTokens, (int)call.OutputTokens, (int)(call.InputTokens + call.OutputTokens));

    private static string FinishReason(ChatFinishReason? reason) =>
        reason == ChatFinishReason.Length ? "length" : reason == ChatFinishReason.ContentFilter ? "content_filter"
        : reason == ChatFinishReason.ToolCalls ? "tool_calls" : "stop";

    private static string NewId() => "chatcmpl-" + Guid.NewGuid().ToString("N")[..24];

    /// <summary>Writes delta chunks from a prefix and suffix built once per stream: only the delta is JSON-encoded per chunk.</summary>
    private sealed class ChunkWriter
    {
        private readonly HttpContext _http;
        private readonly byte[] _firstPrefix, _prefix, _suffix;
        private bool _first = true;

        private ChunkWriter(HttpContext http, string id, long created, string model)
        {
            _http = http;
            var head = JsonSerializer.Serialize(new ChatCompletionChunk(id, "chat.completion.chunk", created, model,
                [new ChunkChoice(0, new ChunkDelta("assistant", "\u0001"), null)], null), OpenAiJsonContext.Default.ChatCompletionChunk);
            // The template holds a placeholder delta: what precedes its quoted value is the prefix, what follows the suffix.
            var marker = head.IndexOf("\"\\u0001\"", StringComparison.Ordinal);
            var before = head[..marker];
            _firstPrefix = Encoding.UTF8.GetBytes("data: " + before);
            _prefix = Encoding.UTF8.GetBytes("data: " + before.Replace("\"role\":\"assistant\",", "", StringComparison.Ordinal));
            _suffix = Encoding.UTF8.GetBytes(head[(marker + "\"\\u0001\"".Length)..] + "\n\n");
        }

        public static async Task<ChunkWriter> StartAsync(HttpContext http, EarlyHeaders headers, string id, long created, string model)
        {
            headers.Send();
            await headers.AwaitAsync();
            return new ChunkWriter(http, id, created, model);
        }

        public async Task DeltaAsync(string delta)
        {
            var body = _http.Response.BodyWriter;
            System.Buffers.BuffersExtensions.Write(body, _first ? _firstPrefix : _prefix);
            _first = false;
            using (var json = new Utf8JsonWriter(body, new JsonWriterOptions { Encoder = OpenAiJsonContext.Default.Options.Encoder }))
            {
                json.WriteStringValue(delta);
            }
            System.Buffers.BuffersExtensions.Write(body, _suffix);
            await body.FlushAsync(_http.RequestAborted);
        }

        public async Task ChunkAsync(ChatCompletionChunk chunk)
        {
            if (_first)
            {
                await DeltaAsync("");
            }
            await OpenAiCompatApi.WriteDataAsync(_http, JsonSerializer.Serialize(chunk, OpenAiJsonContext.Default.ChatCompletionChunk));
        }
    }

    /// <summary>
    /// A stream's response headers (200, <c>text/event-stream</c>, <c>X-Cache</c>), sent once: when a
    /// provider accepts the call (<see cref="ProviderAnswered"/>, called from the provider call while this
    /// request waits for its next update, so never beside a write), or with the first chunk.
    /// </summary>
    private sealed class EarlyHeaders(HttpContext http, ChatCall call)
    {
        private Task? _started;

        public bool Sent => _started is not null;

        public void Send()
        {
            if (_started is not null)
            {
                return;
            }
            http.Response.Headers["X-Cache"] = call.CacheStatus;
            Chat.SseWriter.PrepareHeaders(http);
            // A flush, not StartAsync: Kestrel's StartAsync only buffers the headers until the first write.
            _started = http.Response.BodyWriter.FlushAsync(http.RequestAborted).AsTask();
        }

        public Task AwaitAsync() => _started ?? Task.CompletedTask;
    }
}
