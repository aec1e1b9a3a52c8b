using Microsoft.Extensions.AI;

namespace Jackcwf.Api.Ai.Pipeline;

/// <summary>
/// A stream that ends without a finish reason is incomplete (the OpenAI SDK ends silently when the
/// server sends an error event inside the stream): it becomes a failure, never a "complete" answer.
/// </summary>
public sealed class StreamCompletenessChatClient(IChatClient inner, string provider) : DelegatingChatClient(inner)
{
    public override IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var seen = new Seen();
        return StreamObserver.Start(
            ct => new(StartedStream.Unread(base.GetStreamingResponseAsync(messages, options, ct).GetAsyncEnumerator(ct))),
            seen.Update,
            ended => ended is null && !seen.Finished
                ? ValueTask.FromException(new ProviderException(ProviderFailure.Incomplete(provider, seen.Started)))
                : ValueTask.CompletedTask,
            cancellationToken);
    }

    /// <summary>What a call's stream carried so far.</summary>
    private sealed class Seen
    {
        public bool Finished { get; private set; }
        public bool Started { get; private set; }

        public void Update(ChatResponseUpdate u)
        {
            Finished |= u.FinishReason is not null;
            Started = Started || StartedStream.IsStart(u);
        }
    }
}
