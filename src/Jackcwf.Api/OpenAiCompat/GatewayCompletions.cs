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
    /// <summary>Runs the call and writes its answer; true when <paramref name="stop"/> ended it.</summary>
    public static async Task<bool> CompleteAsync(HttpContext http, IChatClient client, ChatCall call, List<ChatMessage> messages, ChatOptions options,
        CancellationToken stop, ILogger logger)
    {
        ChatResponse response;
        try
        {
            response = await client.GetResponseAsync(messages, options, stop);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            return true;
        }
        catch (Exception ex)
        {
            await FailedAsync(http, call, ex, logger);
            return false;
        }
        http.Response.Headers["X-Cache"] = call.CacheStatus;
        var completion = new ChatCompletion(NewId(), "chat.completion", DateTimeOffset.UtcNow.ToUnixTimeSeconds(), call.AnsweringModel.Id,
            [new CompletionChoice(0, ChatResponseWriting.Message(response.Text, ToolCalls(response)),
                FinishReason(response.FinishReason))], Usage(call));
        // Written whole with its length, in one write: the client has the complete answer when that write
        // leaves, instead of a chunk now and the chunked encoding's last chunk once the request's pipeline
        // has unwound (a second send, and a second wait for a thread to send it).
        var body = AnswerBuffer.Write(completion);
        http.Response.ContentType = "application/json; charset=utf-8";
        http.Response.ContentLength = body.WrittenCount;
        // Copied into the response's pipe before any await: the buffer is this thread's.
        System.Buffers.BuffersExtensions.Write(http.Response.BodyWriter, body.WrittenSpan);
        AnswerBuffer.Release(body);
        await http.Response.BodyWriter.FlushAsync(http.RequestAborted);
        return false;
    }

    /// <summary>Runs the call and streams its answer; true when <paramref name="stop"/> ended it.</summary>
    public static async Task<bool> StreamAsync(HttpContext http, IChatClient client, ChatCall call, List<ChatMessage> messages, ChatOptions options, bool includeUsage,
        CancellationToken stop, ILogger logger)
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
                var updates = client.GetStreamingResponseAsync(messages, options, stop).GetAsyncEnumerator(stop);
                await using (updates)
                {
                    while (true)
                    {
                        // Updates a provider sent in a burst may already be read: none is written once the call is stopped.
                        stop.ThrowIfCancellationRequested();
                        // The first output leaves at once (time to first token); after it, chunks
                        // written go out when the next update is not there yet (or a buffer's worth is
                        // waiting): a provider's burst leaves in one write instead of one per chunk, and
                        // the client never waits on a chunk this process holds while the provider is quiet.
                        if (writer is { Flushed: false })
                        {
                            await writer.FlushAsync();
                        }
                        var next = updates.MoveNextAsync();
                        if (writer is { Unflushed: > 0 } && (!next.IsCompleted || writer.Unflushed >= ChunkWriter.FlushThreshold))
                        {
                            await writer.FlushAsync();
                        }
                        if (!await next)
                        {
                            break;
                        }
                        var update = updates.Current;
                        finish = update.FinishReason ?? finish;
                        var contents = update.Contents;
                        for (var i = 0; i < contents.Count; i++)
                        {
                            if (contents[i] is FunctionCallContent toolCall)
                            {
                                writer ??= await ChunkWriter.StartAsync(http, headers, id, created, call.AnsweringModel.Id);
                                writer.Chunk(ChatResponseWriting.ToolCallChunk(id, created, call.AnsweringModel.Id, toolCall, toolCalls++, first: false));
                            }
                        }
                        if (update.Text is not { Length: > 0 } delta)
                        {
                            continue;
                        }
                        writer ??= await ChunkWriter.StartAsync(http, headers, id, created, call.AnsweringModel.Id);
                        writer.Delta(delta);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            return true;
        }
        catch (Exception ex) when (!headers.Sent)
        {
            await FailedAsync(http, call, ex, logger);
            return false;
        }
        catch (Exception ex)
        {
            // The headers (and maybe output) already went: the error goes in the stream, as OpenAI's own API does.
            try
            {
                await headers.AwaitAsync();
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return true;
            }
            var failure = ProviderFailure.Classify(ex, call.AnsweringModel.Provider);
            logger.LogWarning("Gateway call to {Model} failed {When}: {Kind} ({ExceptionType})", call.AnsweringModel.Id,
                writer is null ? "before its first token" : "mid-stream", failure.Kind, ex.GetType().Name);
            http.Items[WebExtensions.ProblemCodeItem] = $"provider_{failure.Kind}";
            await OpenAiCompatApi.WriteDataAsync(http, JsonSerializer.Serialize(
                OpenAiError.Create(failure.Detail, "api_error", $"provider_{failure.Kind}"), OpenAiJsonContext.Default.OpenAiErrorResponse));
            return false;
        }
        writer ??= await ChunkWriter.StartAsync(http, headers, id, created, call.AnsweringModel.Id);
        writer.Chunk(new ChatCompletionChunk(id, "chat.completion.chunk", created, call.AnsweringModel.Id,
            [new ChunkChoice(0, new ChunkDelta(null, null), FinishReason(finish))], null));
        if (includeUsage)
        {
            writer.Chunk(new ChatCompletionChunk(id, "chat.completion.chunk", created, call.AnsweringModel.Id, [], Usage(call)));
        }
        writer.Done();
        await writer.FlushAsync();
        return false;
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

    /// <summary>The answer's tool calls, in order (an empty list when none, without the query's iterators).</summary>
    private static IReadOnlyList<FunctionCallContent> ToolCalls(ChatResponse response)
    {
        List<FunctionCallContent>? calls = null;
        foreach (var message in response.Messages)
        {
            foreach (var content in message.Contents)
            {
                if (content is FunctionCallContent call)
                {
                    (calls ??= []).Add(call);
                }
            }
        }
        return calls ?? [];
    }

    private static CompletionUsage Usage(ChatCall call) =>
        new((int)call.InputTokens, (int)call.OutputTokens, (int)(call.InputTokens + call.OutputTokens));

    private static string FinishReason(ChatFinishReason? reason) =>
        reason == ChatFinishReason.Length ? "length" : reason == ChatFinishReason.ContentFilter ? "content_filter"
        : reason == ChatFinishReason.ToolCalls ? "tool_calls" : "stop";

    private static string NewId() => string.Create(9 + 24, Guid.NewGuid(), static (chars, guid) =>
    {
        "chatcmpl-".CopyTo(chars);
        Span<char> hex = stackalloc char[32];
        guid.TryFormat(hex, out _, "N");
        hex[..24].CopyTo(chars[9..]);
    });

    /// <summary>
    /// A non-streamed answer's JSON, written into a buffer and JSON writer kept per thread (instead of a new
    /// array and writer per answer), with the options <c>JsonSerializer.SerializeToUtf8Bytes</c> would use.
    /// </summary>
    private static class AnswerBuffer
    {
        // A buffer grown past this by a long answer is not kept.
        private const int MaxKept = 64 * 1024;

        // What the writer points at between answers (never written to), so it holds no dropped buffer.
        private static readonly System.Buffers.ArrayBufferWriter<byte> s_none = new(1);

        [ThreadStatic]
        private static System.Buffers.ArrayBufferWriter<byte>? t_buffer;

        [ThreadStatic]
        private static Utf8JsonWriter? t_json;

        public static System.Buffers.ArrayBufferWriter<byte> Write(ChatCompletion completion)
        {
            var buffer = t_buffer ?? new System.Buffers.ArrayBufferWriter<byte>(4096);
            t_buffer = null;
            var json = t_json ??= new Utf8JsonWriter(buffer, new JsonWriterOptions
            {
                Encoder = OpenAiJsonContext.Default.Options.Encoder,
                Indented = OpenAiJsonContext.Default.Options.WriteIndented,
                MaxDepth = OpenAiJsonContext.Default.Options.MaxDepth,
            });
            json.Reset(buffer);
            try
            {
                JsonSerializer.Serialize(json, completion, OpenAiJsonContext.Default.ChatCompletion);
                json.Flush();
            }
            finally
            {
                json.Reset(s_none);
            }
            return buffer;
        }

        /// <summary>Gives the buffer back to this thread once its bytes are copied.</summary>
        public static void Release(System.Buffers.ArrayBufferWriter<byte> buffer)
        {
            if (buffer.Capacity <= MaxKept)
            {
                buffer.ResetWrittenCount();
                t_buffer = buffer;
            }
        }
    }

    /// <summary>
    /// Writes delta chunks from a prefix and suffix built once per stream: only the delta is
    /// JSON-encoded per chunk, by one reused JSON writer. Writes only buffer; the caller flushes.
    /// </summary>
    private sealed class ChunkWriter
    {
        /// <summary>Unflushed bytes past which the caller flushes even while updates keep coming.</summary>
        public const int FlushThreshold = 16 * 1024;

        private static readonly byte[] DoneEvent = "data: [DONE]\n\n"u8.ToArray();
        private static readonly byte[] DataPrefix = "data: "u8.ToArray();
        private static readonly byte[] EventEnd = "\n\n"u8.ToArray();

        private readonly HttpContext _http;
        private readonly System.IO.Pipelines.PipeWriter _body;
        private readonly byte[] _firstPrefix, _prefix, _suffix;
        private readonly Utf8JsonWriter _json;
        private bool _first = true;

        private ChunkWriter(HttpContext http, string id, long created, string model)
        {
            _http = http;
            _body = http.Response.BodyWriter;
            var head = JsonSerializer.Serialize(new ChatCompletionChunk(id, "chat.completion.chunk", created, model,
                [new ChunkChoice(0, new ChunkDelta("assistant", "\u0001"), null)], null), OpenAiJsonContext.Default.ChatCompletionChunk);
            // The template holds a placeholder delta: what precedes its quoted value is the prefix, what follows the suffix.
            var marker = head.IndexOf("\"\\u0001\"", StringComparison.Ordinal);
            var before = head[..marker];
            _firstPrefix = Encoding.UTF8.GetBytes("data: " + before);
            _prefix = Encoding.UTF8.GetBytes("data: " + before.Replace("\"role\":\"assistant\",", "", StringComparison.Ordinal));
            _suffix = Encoding.UTF8.GetBytes(head[(marker + "\"\\u0001\"".Length)..] + "\n\n");
            _json = new Utf8JsonWriter(_body, new JsonWriterOptions { Encoder = OpenAiJsonContext.Default.Options.Encoder, SkipValidation = true });
        }

        /// <summary>Bytes written since the last flush.</summary>
        public long Unflushed { get; private set; }

        /// <summary>Whether anything went out yet.</summary>
        public bool Flushed { get; private set; }

        public static async Task<ChunkWriter> StartAsync(HttpContext http, EarlyHeaders headers, string id, long created, string model)
        {
            headers.Send();
            await headers.AwaitAsync();
            return new ChunkWriter(http, id, created, model);
        }

        public void Delta(string delta)
        {
            Write(_first ? _firstPrefix : _prefix);
            _first = false;
            _json.Reset(_body);
            _json.WriteStringValue(delta);
            _json.Flush();
            Unflushed += _json.BytesCommitted;
            Write(_suffix);
        }

        public void Chunk(ChatCompletionChunk chunk)
        {
            if (_first)
            {
                Delta("");
            }
            Write(DataPrefix);
            _json.Reset(_body);
            JsonSerializer.Serialize(_json, chunk, OpenAiJsonContext.Default.ChatCompletionChunk);
            _json.Flush();
            Unflushed += _json.BytesCommitted;
            Write(EventEnd);
        }

        public void Done() => Write(DoneEvent);

        public async ValueTask FlushAsync()
        {
            Unflushed = 0;
            Flushed = true;
            await _body.FlushAsync(_http.RequestAborted);
        }

        private void Write(byte[] bytes)
        {
            System.Buffers.BuffersExtensions.Write(_body, bytes);
            Unflushed += bytes.Length;
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
