using System.ClientModel;
using System.ClientModel.Primitives;
using Anthropic;
using Jackcwf.Api.Ai.Pipeline;
using Microsoft.Extensions.AI;
using OpenAI;

namespace Jackcwf.Api.Ai;

/// <summary>
/// Failure classification at the provider boundary: SDK exceptions (whose messages may quote secrets)
/// become a classified <see cref="ProviderException"/>, marked mid-stream once text went out. Also
/// takes the pipeline's <see cref="Pipeline.ChatCall"/> out of the options the provider sees, and
/// lets go of the SDK's own objects behind each streamed update (see <see cref="Release"/>).
/// </summary>
public sealed class FailureClassifyingChatClient(IChatClient inner, string provider) : DelegatingChatClient(inner)
{
    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        try
        {
            return await base.GetResponseAsync(messages, Pipeline.ChatCall.Strip(options), cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            throw new ProviderException(ProviderFailure.Classify(ex, _provider));
        }
    }

    public override IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var call = new Call(this, messages, options);
        return Pipeline.StreamObserver.Start(call.Start, call.Update, cancellationToken: cancellationToken, map: Release, fail: call.Classify);
    }

    /// <summary>One streamed call: whether text went out yet, for a failure's mid-stream mark.</summary>
    private sealed class Call(FailureClassifyingChatClient owner, IEnumerable<ChatMessage> messages, ChatOptions? options)
    {
        private CancellationToken _token;
        private bool _started;

        public ValueTask<Pipeline.StartedStream> Start(CancellationToken cancellationToken)
        {
            _token = cancellationToken;
            try
            {
                return new(Pipeline.StartedStream.Unread(owner.InnerStream(messages, Pipeline.ChatCall.Strip(options), cancellationToken).GetAsyncEnumerator(cancellationToken)));
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                throw new ProviderException(ProviderFailure.Classify(ex, owner._provider));
            }
        }

        public void Update(ChatResponseUpdate update) => _started = _started || Pipeline.StartedStream.IsStart(update);

        public Exception Classify(Exception ex)
        {
            if (ex is OperationCanceledException && _token.IsCancellationRequested)
            {
                return ex;
            }
            var failure = ProviderFailure.Classify(ex, owner._provider);
            return new ProviderException(_started ? failure.MidStream() : failure);
        }
    }

    private readonly string _provider = provider;

    private IAsyncEnumerable<ChatResponseUpdate> InnerStream(IEnumerable<ChatMessage> messages, ChatOptions? options, CancellationToken cancellationToken) =>
        base.GetStreamingResponseAsync(messages, options, cancellationToken);

    /// <summary>
    /// Drops the provider SDK's objects from a streamed update (the update's and its contents'
    /// <c>RawRepresentation</c>): nothing above this layer reads them, and the layers above hold some
    /// updates for as long as the stream is open (the stream's head, the telemetry client's own list),
    /// each of which kept the SDK's parsed chunk, choice, delta and content part alive with it. Measured
    /// with 300 open /v1 streams: about six such SDK chunks held per stream before, one (in flight) after.
    /// </summary>
    internal static ChatResponseUpdate Release(ChatResponseUpdate update)
    {
        update.RawRepresentation = null;
        var contents = update.Contents;
        for (var i = 0; i < contents.Count; i++)
        {
            contents[i].RawRepresentation = null;
        }
        return update;
    }
}
