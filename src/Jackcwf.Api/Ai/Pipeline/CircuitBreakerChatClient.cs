using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;

namespace Jackcwf.Api.Ai.Pipeline;

/// <summary>
/// Runs each call through its endpoint's circuit (<see cref="ProviderCircuitBreakers"/>). A streamed
/// call's outcome is the whole stream's: a stream cut after its first token counts as a failure of the
/// endpoint (it is still never retried). A half-open trial is judged at its first token instead, so
/// one long answer does not keep every other call failing fast; should it break later, that failure
/// is recorded on its own.
/// </summary>
public sealed class CircuitBreakerChatClient(IChatClient inner, ProviderCircuit circuit, string provider) : DelegatingChatClient(inner)
{
    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        try
        {
            return await circuit.Pipeline.ExecuteAsync(async ct => await base.GetResponseAsync(messages, options, ct), cancellationToken);
        }
        catch (BrokenCircuitException)
        {
            throw Open();
        }
    }

    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var started = new TaskCompletionSource<(StartedStream Stream, bool Trial)>(TaskCreationOptions.RunContinuationsAsynchronously);
        // The exception that ended the stream after its start (null: complete, or stopped by the caller).
        var ended = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var execution = circuit.Pipeline.ExecuteAsync(async ct =>
        {
            var trial = circuit.State == CircuitState.HalfOpen;
            started.SetResult((await StartedStream.StartAsync(base.GetStreamingResponseAsync(messages, options, ct), ct), trial));
            if (!trial && await ended.Task is { } failure)
            {
                throw failure; // hands the stream's failure to Polly, which counts it
            }
        }, cancellationToken).AsTask();
        if (await Task.WhenAny(started.Task, execution) != started.Task)
        {
            try
            {
                await execution; // failed before the first token, or refused by the open circuit
            }
            catch (BrokenCircuitException)
            {
                throw Open();
            }
        }
        var (stream, isTrial) = await started.Task;
        try
        {
            await foreach (var u in StreamObserver.Observe(stream.RestAsync(), null, ex =>
            {
                ended.TrySetResult(ex is OperationCanceledException ? null : ex);
                return ValueTask.CompletedTask;
            }, cancellationToken))
            {
                yield return u;
            }
        }
        finally
        {
            ended.TrySetResult(null);
            // The caller already has the stream's exception; this only waits for Polly to record it.
            await execution.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (isTrial && ended.Task.Result is { } late)
            {
                await RecordFailureAsync(late);
            }
        }
    }

    /// <summary>Records a failure seen after the call's own outcome was recorded (a half-open trial that broke later).</summary>
    private async ValueTask RecordFailureAsync(Exception failure)
    {
        var recorded = circuit.Pipeline.ExecuteAsync(static (e, _) => ValueTask.FromException(e), failure).AsTask();
        await recorded.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    // The break duration bounds the wait: after it the next call is the half-open trial.
    private ProviderException Open() => new(ProviderFailure.CircuitOpen(provider, circuit.BreakDuration));
}
