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

    public override IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var run = new Run(this, messages, options);
        return StreamObserver.Start(run.StartAsync, null, run.EndAsync, cancellationToken);
    }

    /// <summary>One streamed call under the circuit: its start under Polly, and its end handed to Polly.</summary>
    private sealed class Run(CircuitBreakerChatClient owner, IEnumerable<ChatMessage> messages, ChatOptions? options)
    {
        // The exception that ended the stream after its start (null: complete, or stopped by the caller).
        private readonly TaskCompletionSource<Exception?> _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private Task? _execution;
        private bool _trial;

        public async ValueTask<StartedStream> StartAsync(CancellationToken cancellationToken)
        {
            var circuit = owner.Circuit;
            var started = new TaskCompletionSource<(StartedStream Stream, bool Trial)>(TaskCreationOptions.RunContinuationsAsynchronously);
            _execution = circuit.Pipeline.ExecuteAsync(async ct =>
            {
                var trial = circuit.State == CircuitState.HalfOpen;
                started.SetResult((await StartedStream.StartAsync(owner.InnerGetStreamingResponseAsync(messages, options, ct), ct), trial));
                if (!trial && await _ended.Task is { } failure)
                {
                    throw failure; // hands the stream's failure to Polly, which counts it
                }
            }, cancellationToken).AsTask();
            if (await Task.WhenAny(started.Task, _execution) != started.Task)
            {
                try
                {
                    await _execution; // failed before the first token, or refused by the open circuit
                }
                catch (BrokenCircuitException)
                {
                    throw owner.Open();
                }
            }
            (var stream, _trial) = await started.Task;
            return stream;
        }

        public async ValueTask EndAsync(Exception? ended)
        {
            _ended.TrySetResult(ended is OperationCanceledException ? null : ended);
            // The caller already has the stream's exception; this only waits for Polly to record it.
            await _execution!.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (_trial && _ended.Task.Result is { } late)
            {
                await owner.RecordFailureAsync(late);
            }
        }
    }

    private IAsyncEnumerable<ChatResponseUpdate> InnerGetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options, CancellationToken cancellationToken) =>
        base.GetStreamingResponseAsync(messages, options, cancellationToken);

    private ProviderCircuit Circuit => circuit;

    /// <summary>Records a failure seen after the call's own outcome was recorded (a half-open trial that broke later).</summary>
    private async ValueTask RecordFailureAsync(Exception failure)
    {
        var recorded = circuit.Pipeline.ExecuteAsync(static (e, _) => ValueTask.FromException(e), failure).AsTask();
        await recorded.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    // The break duration bounds the wait: after it the next call is the half-open trial.
    private ProviderException Open() => new(ProviderFailure.CircuitOpen(provider, circuit.BreakDuration));
}
