using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;

namespace Jackcwf.Api.Ai.Pipeline;

/// <summary>
/// Microsoft.Extensions.AI's <see cref="OpenTelemetryChatClient"/> (the <c>gen_ai.*</c> metrics and
/// spans) without its cost per open stream: it keeps every update of a stream until the stream ends,
/// to summarise the response for the span and the token histogram, so a stream held its whole answer
/// (each chunk with the SDK's raw chunk, about 1 KiB) for as long as it ran. Here the telemetry
/// client sees, for each update, only what that summary reads (response and model ids when they
/// change, the finish reason, usage); updates without any of it are one shared empty update per call.
/// Callers receive the provider's own updates, unchanged. With sensitive data on
/// (<c>OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true</c>), the span carries the answer's
/// text, so the telemetry client then sees the full updates as before.
/// </summary>
public sealed class ProviderTelemetryChatClient : DelegatingChatClient
{
    private readonly OpenTelemetryChatClient _telemetry;

    public ProviderTelemetryChatClient(IChatClient inner, ILoggerFactory? loggerFactory, string sourceName)
        : base(new OpenTelemetryChatClient(new Tap(inner), loggerFactory?.CreateLogger(typeof(OpenTelemetryChatClient)), sourceName))
    {
        _telemetry = (OpenTelemetryChatClient)InnerClient;
    }

    public override IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        _telemetry.EnableSensitiveData
            ? _telemetry.GetStreamingResponseAsync(messages, options, cancellationToken)
            : Relay(new Call(messages), options, cancellationToken);

    // The telemetry client yields each update of the tap as soon as it gets it, so the update it
    // yields stands for call.Current, the provider's update the tap saw last.
    private IAsyncEnumerable<ChatResponseUpdate> Relay(Call call, ChatOptions? options, CancellationToken cancellationToken) =>
        StreamObserver.Start(
            ct => new(StartedStream.Unread(_telemetry.GetStreamingResponseAsync(call, options, ct).GetAsyncEnumerator(ct))),
            cancellationToken: cancellationToken,
            map: _ =>
            {
                var update = call.Current!;
                call.Current = null;
                return update;
            });

    /// <summary>One streamed call: its messages, and the provider's update being handed on.</summary>
    private sealed class Call(IEnumerable<ChatMessage> messages) : IEnumerable<ChatMessage>
    {
        public IEnumerable<ChatMessage> Messages { get; } = messages;
        public ChatResponseUpdate? Current { get; set; }
        public ChatResponseUpdate Empty { get; } = new();
        public string? ResponseId { get; set; }
        public string? ModelId { get; set; }

        // The telemetry client reads the messages only for sensitive data, which never takes this path.
        public IEnumerator<ChatMessage> GetEnumerator() => Messages.GetEnumerator();
        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }

    /// <summary>Below the telemetry client: passes the provider's updates to the call, and their summary up.</summary>
    private sealed class Tap(IChatClient inner) : DelegatingChatClient(inner)
    {
        public override IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
            IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            messages is Call call
                ? Summarise(call, options, cancellationToken)
                : base.GetStreamingResponseAsync(messages, options, cancellationToken);

        private IAsyncEnumerable<ChatResponseUpdate> Summarise(Call call, ChatOptions? options, CancellationToken cancellationToken) =>
            StreamObserver.Start(
                ct => new(StartedStream.Unread(InnerStream(call.Messages, options, ct).GetAsyncEnumerator(ct))),
                cancellationToken: cancellationToken,
                map: update =>
                {
                    call.Current = update;
                    return Summary(call, update);
                });

        private IAsyncEnumerable<ChatResponseUpdate> InnerStream(IEnumerable<ChatMessage> messages, ChatOptions? options, CancellationToken cancellationToken) =>
            base.GetStreamingResponseAsync(messages, options, cancellationToken);

        private static ChatResponseUpdate Summary(Call call, ChatResponseUpdate update)
        {
            var newId = update.ResponseId is { } id && id != call.ResponseId;
            var newModel = update.ModelId is { } model && model != call.ModelId;
            List<AIContent>? usage = null;
            var contents = update.Contents;
            for (var i = 0; i < contents.Count; i++)
            {
                if (contents[i] is UsageContent)
                {
                    (usage ??= []).Add(contents[i]);
                }
            }
            if (!newId && !newModel && update.FinishReason is null && usage is null)
            {
                return call.Empty;
            }
            call.ResponseId = update.ResponseId ?? call.ResponseId;
            call.ModelId = update.ModelId ?? call.ModelId;
            return new ChatResponseUpdate
            {
                Role = update.Role,
                ResponseId = newId ? update.ResponseId : null,
                ModelId = newModel ? update.ModelId : null,
                FinishReason = update.FinishReason,
                Contents = usage ?? [],
            };
        }
    }
}
