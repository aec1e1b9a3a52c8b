using Jackcwf.Api.Telemetry;
using Microsoft.Extensions.AI;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;

namespace Jackcwf.Api.Ai.Pipeline;

/// <summary>
/// Tries the requested model, then its fallbacks in order, when a call fails before the first token
/// (its circuit open included). The call records the model that answered; its prices are the ones charged.
/// </summary>
public sealed class FallbackChatClient(IChatClient inner, IReadOnlyList<(ModelInfo Model, IChatClient Client)> fallbacks, JackcwfMetrics? metrics = null)
    : DelegatingChatClient(inner)
{
    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var call = ChatCall.Of(options);
        try
        {
            return await base.GetResponseAsync(messages, options, cancellationToken);
        }
        catch (ProviderException first) when (fallbacks.Count > 0)
        {
            var last = first;
            foreach (var (model, client) in fallbacks)
            {
                try
                {
                    var response = await client.GetResponseAsync(messages, options, cancellationToken);
                    Answered(call, model);
                    return response;
                }
                catch (ProviderException e)
                {
                    last = e;
                }
            }
            throw last;
        }
    }

    public override IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        StreamObserver.Start(ct => StartAsync(messages, options, ct), cancellationToken: cancellationToken);

    private async ValueTask<StartedStream> StartAsync(IEnumerable<ChatMessage> messages, ChatOptions? options, CancellationToken cancellationToken)
    {
        var call = ChatCall.Of(options);
        StartedStream? started = null;
        ProviderException? failure = null;
        try
        {
            started = await StartedStream.StartAsync(base.GetStreamingResponseAsync(messages, options, cancellationToken), cancellationToken);
        }
        catch (ProviderException e) when (fallbacks.Count > 0)
        {
            failure = e;
        }
        for (var i = 0; started is null && i < fallbacks.Count; i++)
        {
            try
            {
                started = await StartedStream.StartAsync(fallbacks[i].Client.GetStreamingResponseAsync(messages, options, cancellationToken), cancellationToken);
                Answered(call, fallbacks[i].Model);
            }
            catch (ProviderException e)
            {
                failure = e;
            }
        }
        return started ?? throw failure!;
    }

    private void Answered(ChatCall call, ModelInfo model)
    {
        call.AnsweringModel = model;
        metrics?.Fallback(call.RequestedModel.Id, model.Id);
    }
}
