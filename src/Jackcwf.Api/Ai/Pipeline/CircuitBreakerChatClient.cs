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

    /// <summary>
    /// One streamed call under the circuit. While the circuit is closed (nearly always), the call starts
    /// without Polly and its one outcome (the start's failure, or the stream's end) is handed to Polly when it
    /// ends: Polly's closed circuit only records outcomes, and a Polly execution held open for the whole
    /// stream kept about 1.5 KB of its state machines per open stream. Otherwise (open, half-open, isolated)
    /// the start runs under Polly, which refuses it or makes it the half-open trial, and the execution stays
    /// open until the stream ends, as before.
    /// </summary>
    private sealed class Run(CircuitBreakerChatClient owner, IEnumerable<ChatMessage> messages, ChatOptions? options)
    {
        // The exception that ended the stream after its start (null: complete, or stopped by the caller).
        private TaskCompletionSource<Exception?>? _ended;
        private Task? _execution;
        private bool _trial;
        private bool _direct;

        public async ValueTask<StartedStream> StartAsync(CancellationToken cancellationToken)
        {
            var circuit = owner.Circuit;
            if (circuit.State == CircuitState.Closed)
            {
                _direct = true;
                try
                {
                    return await StartedStream.StartAsync(owner.InnerGetStreamingResponseAsync(messages, options, cancellationToken), cancellationToken);
                }
                catch (Exception e)
                {
                    await owner.RecordAsync(e);
                    throw;
                }
            }
            var ended = _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
            var started = new TaskCompletionSource<(StartedStream Stream, bool Trial)>(TaskCreationOptions.RunContinuationsAsynchronously);
            _execution = circuit.Pipeline.ExecuteAsync(async ct =>
            {
                var trial = circuit.State == CircuitState.HalfOpen;
                started.SetResult((await StartedStream.StartAsync(owner.InnerGetStreamingResponseAsync(messages, options, ct), ct), trial));
                if (!trial && await ended.Task is { } failure)
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
            var failure = ended is OperationCanceledException ? null : ended;
            if (_direct)
            {
                await owner.RecordAsync(failure);
                return;
            }
            _ended!.TrySetResult(failure);
            // The caller already has the stream's exception; this only waits for Polly to record it.
            await _execution!.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (_trial && _ended.Task.Result is { } late)
            {
                // A half-open trial that broke after its own outcome was recorded: its failure counts too.
                await owner.RecordAsync(late);
            }
        }
    }

    private IAsyncEnumerable<ChatResponseUpdate> InnerGetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options, CancellationToken cancellationToken) =>
        base.GetStreamingResponseAsync(messages, options, cancellationToken);

    private ProviderCircuit Circuit => circuit;

    /// <summary>
    /// Hands one call's outcome to Polly as an execution that ends with it (null: success): Polly's
    /// <c>ShouldHandle</c> judges it as it judges any execution. Refused when the circuit opened meanwhile,
    /// as an outcome arriving at an open circuit changes nothing.
    /// </summary>
    private async ValueTask RecordAsync(Exception? outcome)
    {
        var recorded = circuit.Pipeline.ExecuteAsync(static (e, _) => e is null ? ValueTask.CompletedTask : ValueTask.FromException(e), outcome).AsTask();
        await recorded.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    // The break duration bounds the wait: after it the next call is the half-open trial.
    private ProviderException Open() => new(ProviderFailure.CircuitOpen(provider, circuit.BreakDuration));
}
