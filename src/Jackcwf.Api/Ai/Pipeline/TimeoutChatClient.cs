using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;

namespace Jackcwf.Api.Ai.Pipeline;

/// <summary>
/// Time to first token and idle time between tokens: a stalled provider ends the call as a
/// <c>timeout</c> failure within the limit (the caller keeps the text so far). One linked token
/// per call, re-armed on each update, instead of a timer of our own.
/// </summary>
public sealed class TimeoutChatClient(IChatClient inner, TimeSpan firstToken, TimeSpan idle, string provider) : DelegatingChatClient(inner)
{
    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(firstToken);
        var started = false;
        var e = base.GetStreamingResponseAsync(messages, options, cts.Token).GetAsyncEnumerator(cts.Token);
        await using (e)
        {
            while (true)
            {
                bool has;
                try
                {
                    has = await e.MoveNextAsync();
                }
                catch (Exception) when (cts.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
                {
                    throw new ProviderException(ProviderFailure.Stalled(provider, started, started ? idle : firstToken));
                }
                if (!has)
                {
                    yield break;
                }
                started |= StartedStream.IsStart(e.Current);
                cts.CancelAfter(started ? idle : firstToken);
                yield return e.Current;
            }
        }
    }
}
