using System.ClientModel;
using System.ClientModel.Primitives;
using System.Diagnostics;
using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.AI;
using OpenAI;
using SdkChatClient = OpenAI.Chat.ChatClient;

namespace Jackcwf.Api.Ai;

/// <summary>
/// The <see cref="IChatClient"/> of OpenAI-compatible providers: Microsoft.Extensions.AI's own OpenAI
/// client, except that a streamed answer's server-sent events are read here instead of by the SDK.
/// </summary>
/// <remarks>
/// <para>
/// Everything up to the response is unchanged: Microsoft.Extensions.AI maps the messages and options
/// to the SDK's, the SDK serialises the request and sends it through its pipeline (authentication,
/// user agent, network timeout, errors as <see cref="ClientResultException"/>). Only the streamed
/// body is read differently: the SDK would parse each event into a <c>JsonDocument</c> and a
/// <c>StreamingChatCompletionUpdate</c> (with its choice, delta, content part and patch objects), which
/// Microsoft.Extensions.AI then converts into a <see cref="ChatResponseUpdate"/>; here each event's
/// bytes go through one <see cref="Utf8JsonReader"/> straight into the <see cref="ChatResponseUpdate"/>
/// Microsoft.Extensions.AI would have made (same text, role, finish reason, usage, ids, model, creation
/// time, tool-call deltas gathered into <see cref="FunctionCallContent"/> at the end, refusal, reasoning
/// text). Measured: about a quarter of the service's CPU of a streamed <c>/v1</c> request was that
/// parsing and conversion (bench/README.md). It is written by hand because no library this project
/// uses turns OpenAI's stream into Microsoft.Extensions.AI updates without the SDK's per-chunk model.
/// </para>
/// <para>
/// How the response is taken: the SDK's protocol method (<see cref="SdkChatClient.CompleteChatAsync(BinaryContent, RequestOptions)"/>),
/// which its streaming call sends the request with, is virtual; <see cref="SseChatClient"/> overrides it
/// and, while a stream of this client asked for it (<see cref="Capture"/>), keeps the real response and
/// hands the SDK an empty stream, so Microsoft.Extensions.AI's enumeration ends at once without parsing
/// anything. Where the response is not taken that way (a future SDK no longer sending through that
/// method), the updates of Microsoft.Extensions.AI's enumeration are passed on as they are: the
/// previous path. Non-streamed calls are Microsoft.Extensions.AI's, unchanged.
/// </para>
/// <para>
/// Not read here: output audio and content parts other than text (the gateway never asks for audio
/// output, and a streamed delta's content is a string); they are left out of the update.
/// </para>
/// </remarks>
public sealed class OpenAiStreamingChatClient : DelegatingChatClient
{
    private static readonly AsyncLocal<Capture?> s_capture = new();

    public OpenAiStreamingChatClient(OpenAIClient client, OpenAIClientOptions options, string model)
        : base(new SseChatClient(client.Pipeline, model, options).AsIChatClient())
    {
    }

    public override IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        Stream(new SdkUpdates(base.GetStreamingResponseAsync(messages, options, cancellationToken)), cancellationToken);

    /// <summary>
    /// Microsoft.Extensions.AI's enumeration until <see cref="Stream"/> starts it. Not an argument of the
    /// iterator itself: an iterator keeps its arguments for as long as it exists, and this enumeration (its
    /// state machine, the request's options and messages) is done with once the response is taken.
    /// </summary>
    private sealed class SdkUpdates(IAsyncEnumerable<ChatResponseUpdate> updates)
    {
        private IAsyncEnumerable<ChatResponseUpdate>? _updates = updates;

        public IAsyncEnumerable<ChatResponseUpdate> Take() =>
            Interlocked.Exchange(ref _updates, null) ?? throw new InvalidOperationException("The stream was already enumerated.");
    }

    private static async IAsyncEnumerable<ChatResponseUpdate> Stream(SdkUpdates sdkUpdates, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var (response, sdk) = await TakeAsync(sdkUpdates.Take(), cancellationToken);
        if (sdk is not null)
        {
            // Not taken: the SDK's and Microsoft.Extensions.AI's own reading.
            try
            {
                do
                {
                    yield return sdk.Current;
                }
                while (await sdk.MoveNextAsync());
            }
            finally
            {
                await sdk.DisposeAsync();
            }
            yield break;
        }
        if (response is null)
        {
            yield break;
        }

        using var taken = response;
        var reader = new ChunkReader();
        var body = taken.ContentStream ?? throw new InvalidOperationException("Unable to create result from response with null ContentStream");
        await foreach (var item in SseParser.Create(body, reader.Parse).EnumerateAsync(cancellationToken))
        {
            if (item.Data is not { } update)
            {
                break;
            }
            yield return update;
        }
        if (reader.Final() is { } final)
        {
            yield return final;
        }
    }

    /// <summary>
    /// Starts Microsoft.Extensions.AI's enumeration, which sends the request: the response taken from it
    /// (the enumeration then disposed), or, when it was not taken, the enumeration positioned on its first
    /// update (null response and enumeration: it ended without any).
    /// </summary>
    private static async Task<(PipelineResponse? Response, IAsyncEnumerator<ChatResponseUpdate>? NotTaken)> TakeAsync(
        IAsyncEnumerable<ChatResponseUpdate> sdkUpdates, CancellationToken cancellationToken)
    {
        var capture = new Capture();
        var sdk = sdkUpdates.GetAsyncEnumerator(cancellationToken);
        bool more;
        try
        {
            s_capture.Value = capture;
            try
            {
                more = await sdk.MoveNextAsync();
            }
            finally
            {
                s_capture.Value = null;
            }
        }
        catch
        {
            await sdk.DisposeAsync();
            throw;
        }
        if (capture.Response is null && more)
        {
            return (null, sdk);
        }
        await sdk.DisposeAsync();
        return (capture.Response, null);
    }

    /// <summary>
    /// Streamed calls (the messages whose response is not buffered) without the SDK's network timeout:
    /// that timeout is a cancellation timer armed for the call and, on a streamed body, re-armed on every
    /// read through a stream wrapper (a linked token source, a timer-queue update and a task per read).
    /// Added only where the streamed call's own deadlines (time to first token and idle time,
    /// <see cref="Pipeline.TimeoutChatClient"/>) are shorter than the network timeout, so it never fired first.
    /// </summary>
    internal sealed class NoStreamNetworkTimeout : PipelinePolicy
    {
        public static readonly NoStreamNetworkTimeout Instance = new();

        public override void Process(PipelineMessage message, IReadOnlyList<PipelinePolicy> pipeline, int currentIndex)
        {
            Apply(message);
            ProcessNext(message, pipeline, currentIndex);
        }

        public override ValueTask ProcessAsync(PipelineMessage message, IReadOnlyList<PipelinePolicy> pipeline, int currentIndex)
        {
            Apply(message);
            return ProcessNextAsync(message, pipeline, currentIndex);
        }

        private static void Apply(PipelineMessage message)
        {
            if (!message.BufferResponse)
            {
                message.NetworkTimeout = Timeout.InfiniteTimeSpan;
            }
        }
    }

    /// <summary>One stream's request for the real response (<see cref="SseChatClient"/>).</summary>
    private sealed class Capture
    {
        public PipelineResponse? Response;
    }

    /// <summary>The SDK's chat client, keeping a streamed response for the <see cref="Capture"/> that asked for it.</summary>
    private sealed class SseChatClient(ClientPipeline pipeline, string model, OpenAIClientOptions options) : SdkChatClient(pipeline, model, options)
    {
        public override async Task<ClientResult> CompleteChatAsync(BinaryContent content, RequestOptions? options = null)
        {
            var capture = s_capture.Value;
            var result = await base.CompleteChatAsync(content, options).ConfigureAwait(false);
            if (capture is null || capture.Response is not null)
            {
                return result;
            }
            capture.Response = result.GetRawResponse();
            return ClientResult.FromResponse(new EmptyResponse(capture.Response.Status));
        }
    }

    /// <summary>What the SDK reads instead of the taken response: no events.</summary>
    private sealed class EmptyResponse(int status) : PipelineResponse
    {
        public override int Status => status;
        public override string ReasonPhrase => "OK";
        public override Stream? ContentStream { get; set; } = System.IO.Stream.Null;
        public override BinaryData Content => BinaryData.Empty;
        protected override PipelineResponseHeaders HeadersCore => NoHeaders.Instance;
        public override BinaryData BufferContent(CancellationToken cancellationToken = default) => BinaryData.Empty;
        public override ValueTask<BinaryData> BufferContentAsync(CancellationToken cancellationToken = default) => new(BinaryData.Empty);
        public override void Dispose() { }
    }

    private sealed class NoHeaders : PipelineResponseHeaders
    {
        public static readonly NoHeaders Instance = new();
        public override bool TryGetValue(string name, out string? value) { value = null; return false; }
        public override bool TryGetValues(string name, out IEnumerable<string>? values) { values = null; return false; }
        public override IEnumerator<KeyValuePair<string, string>> GetEnumerator() => Enumerable.Empty<KeyValuePair<string, string>>().GetEnumerator();
    }

    /// <summary>
    /// One stream's events into updates, with what Microsoft.Extensions.AI's OpenAI client keeps across
    /// them (role, finish reason, first id, creation time and model; tool-call deltas; refusal text).
    /// </summary>
    internal sealed class ChunkReader
    {
        private Dictionary<int, ToolCall>? _toolCalls;
        private ChatRole? _role;
        private ChatFinishReason? _finishReason;
        private StringBuilder? _refusal;
        private string? _responseId;
        private DateTimeOffset? _createdAt;
        private string? _modelId;
        private string? _serviceTier;
        private string? _systemFingerprint;
        // Every chunk repeats the id and model: the previous chunk's strings, when equal, rather than new ones.
        private string? _lastId;
        private string? _lastModel;

        private sealed class ToolCall
        {
            public string? CallId;
            public string? Name;
            public StringBuilder? Arguments;
        }

        /// <summary>One event's data as an update; null for the end marker (<c>[DONE]</c>).</summary>
        public ChatResponseUpdate? Parse(string eventType, ReadOnlySpan<byte> data)
        {
            if (data.SequenceEqual("[DONE]"u8))
            {
                return null;
            }
            var json = new Utf8JsonReader(data);
            Read(ref json);
            if (json.TokenType != JsonTokenType.StartObject)
            {
                throw new InvalidOperationException($"The requested operation requires an element of type 'Object', but the target element has type '{json.TokenType}'.");
            }
            string? id = null, model = null, serviceTier = null, fingerprint = null;
            DateTimeOffset created = default;
            UsageDetails? usage = null;
            ChatRole? role = null;
            ChatFinishReason? finish = null;
            string? refusal = null, reasoning = null;
            object? content = null;
            while (Read(ref json) && json.TokenType == JsonTokenType.PropertyName)
            {
                if (json.ValueTextEquals("choices"u8))
                {
                    Read(ref json);
                    if (json.TokenType == JsonTokenType.StartArray)
                    {
                        var first = true;
                        while (Read(ref json) && json.TokenType != JsonTokenType.EndArray)
                        {
                            if (first && json.TokenType == JsonTokenType.StartObject)
                            {
                                ReadChoice(ref json, ref role, ref finish, ref content, ref refusal, ref reasoning);
                            }
                            else
                            {
                                json.Skip();
                            }
                            first = false;
                        }
                    }
                    else
                    {
                        json.Skip();
                    }
                }
                else if (json.ValueTextEquals("id"u8))
                {
                    Read(ref json);
                    id = Same(ref json, _lastId) ?? (_lastId = json.GetString());
                }
                else if (json.ValueTextEquals("created"u8))
                {
                    Read(ref json);
                    created = DateTimeOffset.FromUnixTimeSeconds(json.GetInt64());
                }
                else if (json.ValueTextEquals("model"u8))
                {
                    Read(ref json);
                    model = Same(ref json, _lastModel) ?? (_lastModel = json.GetString());
                }
                else if (json.ValueTextEquals("service_tier"u8))
                {
                    Read(ref json);
                    serviceTier = json.TokenType == JsonTokenType.Null ? null : json.GetString();
                }
                else if (json.ValueTextEquals("system_fingerprint"u8))
                {
                    Read(ref json);
                    fingerprint = json.GetString();
                }
                else if (json.ValueTextEquals("usage"u8))
                {
                    Read(ref json);
                    usage = json.TokenType == JsonTokenType.Null ? null : ReadUsage(ref json);
                }
                else
                {
                    Read(ref json);
                    json.Skip();
                }
            }

            _role ??= role;
            _finishReason ??= finish;
            _responseId ??= id;
            _createdAt ??= created;
            _modelId ??= string.IsNullOrEmpty(model) ? null : model;
            ResponseAttributes(serviceTier, fingerprint);

            var update = new ChatResponseUpdate
            {
                ResponseId = id,
                MessageId = id,
                CreatedAt = created,
                FinishReason = _finishReason,
                ModelId = _modelId,
                Role = _role,
            };
            if (content is string text)
            {
                // A list of exactly one (Add on the default list would make room for four): one per chunk.
                update.Contents = [new TextContent(text)];
            }
            else if (content is List<string> parts)
            {
                foreach (var part in parts)
                {
                    update.Contents.Add(new TextContent(part));
                }
            }
            if (reasoning is not null)
            {
                update.Contents.Add(new TextReasoningContent(reasoning));
            }
            if (refusal is not null)
            {
                (_refusal ??= new()).Append(refusal);
            }
            if (usage is not null)
            {
                update.Contents.Add(new UsageContent(usage));
            }
            return update;
        }

        /// <summary>After the last event: the gathered tool calls (and refusal), as Microsoft.Extensions.AI yields them.</summary>
        public ChatResponseUpdate? Final()
        {
            if (_toolCalls is null)
            {
                return null;
            }
            var update = new ChatResponseUpdate
            {
                ResponseId = _responseId,
                MessageId = _responseId,
                CreatedAt = _createdAt,
                FinishReason = _finishReason,
                ModelId = _modelId,
                Role = _role,
            };
            foreach (var call in _toolCalls.Values)
            {
                if (!string.IsNullOrWhiteSpace(call.Name))
                {
                    update.Contents.Add(FunctionCallContent.CreateFromParsedArguments(
                        call.Arguments?.ToString() ?? string.Empty, call.CallId!, call.Name,
                        static json => JsonSerializer.Deserialize(json, OpenAiStreamJson.Default.IDictionaryStringObject)));
                }
            }
            if (_refusal is not null)
            {
                update.Contents.Add(new ErrorContent(_refusal.ToString()) { ErrorCode = "Refusal" });
            }
            return update;
        }

        private void ReadChoice(ref Utf8JsonReader json, ref ChatRole? role, ref ChatFinishReason? finish,
            ref object? content, ref string? refusal, ref string? reasoning)
        {
            while (Read(ref json) && json.TokenType == JsonTokenType.PropertyName)
            {
                if (json.ValueTextEquals("delta"u8))
                {
                    Read(ref json);
                    if (json.TokenType == JsonTokenType.StartObject)
                    {
                        ReadDelta(ref json, ref role, ref content, ref refusal, ref reasoning);
                    }
                    else
                    {
                        json.Skip();
                    }
                }
                else if (json.ValueTextEquals("finish_reason"u8))
                {
                    Read(ref json);
                    if (json.TokenType != JsonTokenType.Null)
                    {
                        finish = FinishReason(json.GetString()!);
                    }
                }
                else
                {
                    Read(ref json);
                    json.Skip();
                }
            }
        }

        private void ReadDelta(ref Utf8JsonReader json, ref ChatRole? role, ref object? content, ref string? refusal, ref string? reasoning)
        {
            while (Read(ref json) && json.TokenType == JsonTokenType.PropertyName)
            {
                if (json.ValueTextEquals("content"u8))
                {
                    Read(ref json);
                    if (json.TokenType == JsonTokenType.String)
                    {
                        content = json.GetString();
                    }
                    else if (json.TokenType == JsonTokenType.StartArray)
                    {
                        content = TextParts(ref json);
                    }
                    else
                    {
                        json.Skip();
                    }
                }
                else if (json.ValueTextEquals("role"u8))
                {
                    Read(ref json);
                    if (json.TokenType != JsonTokenType.Null)
                    {
                        role = Role(json.GetString()!);
                    }
                }
                else if (json.ValueTextEquals("tool_calls"u8))
                {
                    Read(ref json);
                    if (json.TokenType == JsonTokenType.StartArray)
                    {
                        while (Read(ref json) && json.TokenType != JsonTokenType.EndArray)
                        {
                            ReadToolCall(ref json);
                        }
                    }
                    else
                    {
                        json.Skip();
                    }
                }
                else if (json.ValueTextEquals("refusal"u8))
                {
                    Read(ref json);
                    refusal = json.TokenType == JsonTokenType.Null ? null : json.GetString();
                }
                else if (json.ValueTextEquals("reasoning_content"u8))
                {
                    Read(ref json);
                    reasoning = json.TokenType == JsonTokenType.String ? json.GetString() : null;
                    json.Skip();
                }
                else
                {
                    Read(ref json);
                    json.Skip();
                }
            }
        }

        /// <summary>A content array's text parts (what Microsoft.Extensions.AI makes text of, one content each).</summary>
        private static List<string> TextParts(ref Utf8JsonReader json)
        {
            var texts = new List<string>();
            while (Read(ref json) && json.TokenType != JsonTokenType.EndArray)
            {
                if (json.TokenType != JsonTokenType.StartObject)
                {
                    json.Skip();
                    continue;
                }
                string? type = null, partText = null;
                while (Read(ref json) && json.TokenType == JsonTokenType.PropertyName)
                {
                    if (json.ValueTextEquals("type"u8))
                    {
                        Read(ref json);
                        type = json.GetString();
                    }
                    else if (json.ValueTextEquals("text"u8))
                    {
                        Read(ref json);
                        partText = json.GetString();
                    }
                    else
                    {
                        Read(ref json);
                        json.Skip();
                    }
                }
                if (type == "text" && partText is not null)
                {
                    texts.Add(partText);
                }
            }
            return texts;
        }

        private void ReadToolCall(ref Utf8JsonReader json)
        {
            if (json.TokenType != JsonTokenType.StartObject)
            {
                json.Skip();
                return;
            }
            int index = 0;
            string? id = null, name = null, arguments = null;
            while (Read(ref json) && json.TokenType == JsonTokenType.PropertyName)
            {
                if (json.ValueTextEquals("index"u8))
                {
                    Read(ref json);
                    index = json.GetInt32();
                }
                else if (json.ValueTextEquals("id"u8))
                {
                    Read(ref json);
                    id = json.GetString();
                }
                else if (json.ValueTextEquals("function"u8))
                {
                    Read(ref json);
                    if (json.TokenType != JsonTokenType.StartObject)
                    {
                        json.Skip();
                        continue;
                    }
                    while (Read(ref json) && json.TokenType == JsonTokenType.PropertyName)
                    {
                        if (json.ValueTextEquals("name"u8))
                        {
                            Read(ref json);
                            name = json.GetString();
                        }
                        else if (json.ValueTextEquals("arguments"u8))
                        {
                            Read(ref json);
                            arguments = json.TokenType == JsonTokenType.Null ? null : json.GetString();
                        }
                        else
                        {
                            Read(ref json);
                            json.Skip();
                        }
                    }
                }
                else
                {
                    Read(ref json);
                    json.Skip();
                }
            }
            _toolCalls ??= [];
            if (!_toolCalls.TryGetValue(index, out var call))
            {
                _toolCalls[index] = call = new ToolCall();
            }
            call.CallId ??= id;
            call.Name ??= name;
            if (!string.IsNullOrEmpty(arguments))
            {
                (call.Arguments ??= new()).Append(arguments);
            }
        }

        private static UsageDetails ReadUsage(ref Utf8JsonReader json)
        {
            if (json.TokenType != JsonTokenType.StartObject)
            {
                throw new InvalidOperationException($"The requested operation requires an element of type 'Object', but the target element has type '{json.TokenType}'.");
            }
            int input = 0, output = 0, total = 0;
            bool inputDetails = false, outputDetails = false;
            int cached = 0, inputAudio = 0, reasoning = 0, outputAudio = 0, accepted = 0, rejected = 0;
            while (Read(ref json) && json.TokenType == JsonTokenType.PropertyName)
            {
                if (json.ValueTextEquals("prompt_tokens"u8))
                {
                    Read(ref json);
                    input = json.GetInt32();
                }
                else if (json.ValueTextEquals("completion_tokens"u8))
                {
                    Read(ref json);
                    output = json.GetInt32();
                }
                else if (json.ValueTextEquals("total_tokens"u8))
                {
                    Read(ref json);
                    total = json.GetInt32();
                }
                else if (json.ValueTextEquals("prompt_tokens_details"u8))
                {
                    Read(ref json);
                    if (json.TokenType == JsonTokenType.StartObject)
                    {
                        inputDetails = true;
                        while (Read(ref json) && json.TokenType == JsonTokenType.PropertyName)
                        {
                            if (json.ValueTextEquals("cached_tokens"u8)) { Read(ref json); cached = json.GetInt32(); }
                            else if (json.ValueTextEquals("audio_tokens"u8)) { Read(ref json); inputAudio = json.GetInt32(); }
                            else { Read(ref json); json.Skip(); }
                        }
                    }
                    else
                    {
                        json.Skip();
                    }
                }
                else if (json.ValueTextEquals("completion_tokens_details"u8))
                {
                    Read(ref json);
                    if (json.TokenType == JsonTokenType.StartObject)
                    {
                        outputDetails = true;
                        while (Read(ref json) && json.TokenType == JsonTokenType.PropertyName)
                        {
                            if (json.ValueTextEquals("reasoning_tokens"u8)) { Read(ref json); reasoning = json.GetInt32(); }
                            else if (json.ValueTextEquals("audio_tokens"u8)) { Read(ref json); outputAudio = json.GetInt32(); }
                            else if (json.ValueTextEquals("accepted_prediction_tokens"u8)) { Read(ref json); accepted = json.GetInt32(); }
                            else if (json.ValueTextEquals("rejected_prediction_tokens"u8)) { Read(ref json); rejected = json.GetInt32(); }
                            else { Read(ref json); json.Skip(); }
                        }
                    }
                    else
                    {
                        json.Skip();
                    }
                }
                else
                {
                    Read(ref json);
                    json.Skip();
                }
            }
            var usage = new UsageDetails
            {
                InputTokenCount = input,
                OutputTokenCount = output,
                TotalTokenCount = total,
                CachedInputTokenCount = inputDetails ? cached : null,
                ReasoningTokenCount = outputDetails ? reasoning : null,
                AdditionalCounts = [],
            };
            if (inputDetails)
            {
                usage.AdditionalCounts.Add("InputTokenDetails.AudioTokenCount", inputAudio);
            }
            if (outputDetails)
            {
                usage.AdditionalCounts.Add("OutputTokenDetails.AudioTokenCount", outputAudio);
                usage.AdditionalCounts.Add("OutputTokenDetails.AcceptedPredictionTokenCount", accepted);
                usage.AdditionalCounts.Add("OutputTokenDetails.RejectedPredictionTokenCount", rejected);
            }
            return usage;
        }

        /// <summary><paramref name="previous"/> when the current string token says the same.</summary>
        private static string? Same(ref Utf8JsonReader json, string? previous) =>
            previous is not null && json.TokenType == JsonTokenType.String && json.ValueTextEquals(previous) ? previous : null;

        private static bool Read(ref Utf8JsonReader json) =>
            json.Read() ? true : throw new JsonException("The chunk ended before its JSON was complete.");

        /// <summary>The SDK's role names (any case) as Microsoft.Extensions.AI maps them; another name fails as in the SDK.</summary>
        private static ChatRole Role(string value) =>
            value.Equals("assistant", StringComparison.OrdinalIgnoreCase) ? ChatRole.Assistant
            : value.Equals("system", StringComparison.OrdinalIgnoreCase) ? ChatRole.System
            : value.Equals("user", StringComparison.OrdinalIgnoreCase) ? ChatRole.User
            : value.Equals("tool", StringComparison.OrdinalIgnoreCase) ? ChatRole.Tool
            : value.Equals("developer", StringComparison.OrdinalIgnoreCase) ? s_developer
            : value.Equals("function", StringComparison.OrdinalIgnoreCase) ? s_function
            : throw new ArgumentOutOfRangeException(nameof(value), value, "Unknown ChatMessageRole value.");

        private static readonly ChatRole s_developer = new("developer");
        private static readonly ChatRole s_function = new("Function");

        private static ChatFinishReason FinishReason(string value) =>
            value.Equals("stop", StringComparison.OrdinalIgnoreCase) ? ChatFinishReason.Stop
            : value.Equals("length", StringComparison.OrdinalIgnoreCase) ? ChatFinishReason.Length
            : value.Equals("tool_calls", StringComparison.OrdinalIgnoreCase) ? ChatFinishReason.ToolCalls
            : value.Equals("content_filter", StringComparison.OrdinalIgnoreCase) ? ChatFinishReason.ContentFilter
            : value.Equals("function_call", StringComparison.OrdinalIgnoreCase) ? ChatFinishReason.ToolCalls
            : throw new ArgumentOutOfRangeException(nameof(value), value, "Unknown ChatFinishReason value.");

        /// <summary>The service tier and system fingerprint on the current chat span, once each, as Microsoft.Extensions.AI's client sets them.</summary>
        private void ResponseAttributes(string? serviceTier, string? fingerprint)
        {
            var tier = _serviceTier is null && !string.IsNullOrWhiteSpace(serviceTier);
            var print = _systemFingerprint is null && !string.IsNullOrWhiteSpace(fingerprint);
            if (!tier && !print || Activity.Current is not { IsAllDataRequested: true } activity
                || !activity.DisplayName.StartsWith("chat", StringComparison.Ordinal)
                || activity.DisplayName.Length != 4 && activity.DisplayName[4] != ' ')
            {
                return;
            }
            if (tier)
            {
                _serviceTier = serviceTier;
                activity.SetTag("openai.response.service_tier", serviceTier);
            }
            if (print)
            {
                _systemFingerprint = fingerprint;
                activity.SetTag("openai.response.system_fingerprint", fingerprint);
            }
        }
    }
}

/// <summary>Tool-call arguments as Microsoft.Extensions.AI's OpenAI client parses them.</summary>
[System.Text.Json.Serialization.JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[System.Text.Json.Serialization.JsonSerializable(typeof(IDictionary<string, object?>))]
internal sealed partial class OpenAiStreamJson : System.Text.Json.Serialization.JsonSerializerContext;
