using System.Diagnostics;
using System.Runtime.CompilerServices;
using Jackcwf.Api.Limits;
using Jackcwf.Api.Telemetry;
using Jackcwf.Api.Usage;
using Microsoft.Extensions.AI;

namespace Jackcwf.Api.Ai.Pipeline;

/// <summary>
/// Usage and cost accounting: once a call ends (complete, stopped or failed) it writes one ledger
/// line with the answering model's tokens and cost (a cache hit: cost 0, marked cached, with the
/// tokens it saved) and the token/cost metrics. The only place usage is recorded.
/// </summary>
public sealed class UsageAccountingChatClient(IChatClient inner, IUsageRecorder ledger, JackcwfMetrics? metrics = null) : DelegatingChatClient(inner)
{
    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var call = ChatCall.Of(options);
        ChatResponse response;
        try
        {
            response = await base.GetResponseAsync(messages, options, cancellationToken);
        }
        catch (Exception ex)
        {
            await RecordAsync(call, messages, ex);
            throw;
        }
        call.Observe(response);
        await RecordAsync(call, messages, null);
        return response;
    }

    public override IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var call = ChatCall.Of(options);
        return StreamObserver.Observe(base.GetStreamingResponseAsync(messages, options, cancellationToken), call.Observe,
            ex => RecordAsync(call, messages, ex), cancellationToken);
    }

    private async ValueTask RecordAsync(ChatCall call, IEnumerable<ChatMessage> messages, Exception? ended)
    {
        if (ended is LimitRefusedException)
        {
            return; // refused before any provider call: nothing was used
        }
        call.Settle(messages, ended is not null and not OperationCanceledException);
        var model = call.AnsweringModel;
        if (call.Cached)
        {
            metrics?.CacheTokensSaved(call.TokensSaved);
            await ledger.RecordAsync(call.UserId, call.ApiKeyId, model.Id, call.Source, 0, 0, 0m, cached: true, tokensSaved: call.TokensSaved);
            return;
        }
        metrics?.Usage(model.Provider, model.Id, call.InputTokens, call.OutputTokens, call.CostUsd);
        await ledger.RecordAsync(call.UserId, call.ApiKeyId, model.Id, call.Source, call.InputTokens, call.OutputTokens, call.CostUsd);
    }
}

/// <summary>
/// Limits and budget: reserves the most a call can cost (prompt and the output-token cap at the
/// dearest price among the model and its fallbacks) before any provider call, and settles to the
/// real cost after (or, for a call that <see cref="ChatCall.DefersSettlement"/>, fixes the cost and leaves
/// the settlement to the caller). The reservation is atomic in the limit store, so concurrent calls never spend
/// past the budget by more than one call's maximum. A refused reservation throws
/// <see cref="LimitRefusedException"/> before the provider is called.
/// </summary>
public sealed class BudgetChatClient(IChatClient inner, ISpendLimiter guard, IReadOnlyList<ModelInfo> candidates) : DelegatingChatClient(inner)
{
    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var call = ChatCall.Of(options);
        var reservation = await ReserveAsync(call, messages, options);
        ChatResponse response;
        try
        {
            response = await base.GetResponseAsync(messages, options, cancellationToken);
        }
        catch (Exception ex)
        {
            await SettleAsync(call, messages, reservation, ex);
            throw;
        }
        call.Observe(response);
        await SettleAsync(call, messages, reservation, null);
        return response;
    }

    public override IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        SpendReservation? reservation = null;
        ChatCall? call = null;
        return StreamObserver.Start(async ct =>
        {
            call = ChatCall.Of(options);
            reservation = await ReserveAsync(call, messages, options);
            return StartedStream.Unread(base.GetStreamingResponseAsync(messages, options, ct).GetAsyncEnumerator(ct));
        }, u => call!.Observe(u), ex => SettleAsync(call!, messages, reservation!, ex), cancellationToken);
    }

    /// <summary>The most this call can cost: every prompt character a token (a safe upper bound) plus the output cap.</summary>
    public decimal MaxCost(IEnumerable<ChatMessage> messages, ChatOptions? options) => MaxCost(candidates, messages, options, guard.MaxOutputTokens);

    /// <summary>The most a call can cost on any of <paramref name="candidates"/> (the model and its fallbacks).</summary>
    public static decimal MaxCost(IReadOnlyList<ModelInfo> candidates, IEnumerable<ChatMessage> messages, ChatOptions? options, int serverMaxOutputTokens)
    {
        var input = messages.Sum(m => (long)m.Text.Length + 4);
        var max = 0m;
        foreach (var m in candidates)
        {
            max = Math.Max(max, m.Cost(input, options?.MaxOutputTokens ?? m.MaxOutputTokens ?? serverMaxOutputTokens));
        }
        return max;
    }

    private async ValueTask<SpendReservation> ReserveAsync(ChatCall call, IEnumerable<ChatMessage> messages, ChatOptions? options)
    {
        if (call.TakeReservation() is { } reserved)
        {
            return reserved;
        }
        var (reservation, refusal) = await guard.ReserveSpendAsync(call.UserId, MaxCost(messages, options));
        return refusal is null ? reservation! : throw new LimitRefusedException(refusal);
    }

    private ValueTask SettleAsync(ChatCall call, IEnumerable<ChatMessage> messages, SpendReservation reservation, Exception? ended)
    {
        call.Settle(messages, ended is not null and not OperationCanceledException);
        if (call.DefersSettlement)
        {
            // The caller sends it later (the chat runner, with its final event); the cost is fixed now.
            var cost = call.CostUsd;
            call.DeferSettlement(() => guard.SettleSpendAsync(reservation, cost, call.Slot));
            return ValueTask.CompletedTask;
        }
        return guard.SettleSpendAsync(reservation, call.CostUsd, call.Slot);
    }
}

/// <summary>
/// Telemetry: generations in flight, time from the request to the first token, duration and final
/// status per model, provider failures by kind.
/// </summary>
public sealed class TelemetryChatClient(IChatClient inner, JackcwfMetrics metrics) : DelegatingChatClient(inner)
{
    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var call = ChatCall.Of(options);
        metrics.GenerationStarted(call.RequestedModel.Provider);
        try
        {
            var response = await base.GetResponseAsync(messages, options, cancellationToken);
            End(call, null);
            return response;
        }
        catch (Exception ex)
        {
            End(call, ex);
            throw;
        }
    }

    public override IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var call = ChatCall.Of(options);
        metrics.GenerationStarted(call.RequestedModel.Provider);
        return StreamObserver.Observe(base.GetStreamingResponseAsync(messages, options, cancellationToken), u =>
        {
            if (!call.FirstTokenSeen && u.Text.Length > 0)
            {
                call.FirstTokenSeen = true;
                metrics.FirstToken(call.AnsweringModel.Provider, call.AnsweringModel.Id, Stopwatch.GetElapsedTime(call.AcceptedTimestamp));
            }
        }, ex =>
        {
            End(call, ex);
            return ValueTask.CompletedTask;
        }, cancellationToken);
    }

    private void End(ChatCall call, Exception? ended)
    {
        if (ended is ProviderException p)
        {
            metrics.ProviderError(call.AnsweringModel.Provider, p.Failure.Kind);
        }
        var status = ended switch
        {
            null => "complete",
            OperationCanceledException => call.StopReason?.Invoke() ?? "stopped",
            LimitRefusedException => "refused",
            _ => "failed",
        };
        metrics.GenerationFinished(call.RequestedModel.Provider, call.AnsweringModel.Id, status, Stopwatch.GetElapsedTime(call.AcceptedTimestamp));
    }
}
