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
/// takes the pipeline's <see cref="Pipeline.ChatCall"/> out of the options the provider sees.
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
            throw new ProviderException(ProviderFailure.Classify(ex, provider));
        }
    }

    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        IAsyncEnumerator<ChatResponseUpdate> e;
        var started = false;
        try
        {
            e = base.GetStreamingResponseAsync(messages, Pipeline.ChatCall.Strip(options), cancellationToken).GetAsyncEnumerator(cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            throw new ProviderException(ProviderFailure.Classify(ex, provider));
        }
        await using (e)
        {
            while (true)
            {
                try
                {
                    if (!await e.MoveNextAsync())
                    {
                        yield break;
                    }
                }
                catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
                {
                    var failure = ProviderFailure.Classify(ex, provider);
                    throw new ProviderException(started ? failure.MidStream() : failure);
                }
                started |= Pipeline.StartedStream.IsStart(e.Current);
                yield return e.Current;
            }
        }
    }
}
