using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;

namespace Jackcwf.Api.Ai.Pipeline;

/// <summary>
/// A stream that ends without a finish reason is incomplete (the OpenAI SDK ends silently when the
/// server sends an error event inside the stream): it becomes a failure, never a "complete" answer.
/// </summary>
public sealed class StreamCompletenessChatClient(IChatClient inner, string provider) : DelegatingChatClient(inner)
{
    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var finished = false;
        var started = false;
        await foreach (var u in base.GetStreamingResponseAsync(messages, options, cancellationToken))
        {
            finished |= u.FinishReason is not null;
            started |= StartedStream.IsStart(u);
            yield return u;
        }
        if (!finished)
        {
            throw new ProviderException(ProviderFailure.Incomplete(provider, started));
        }
    }
}
