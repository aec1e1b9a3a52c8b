using System.Diagnostics;
using Microsoft.Extensions.AI;

namespace Jackcwf.Api.Ai.Pipeline;

/// <summary>
/// Runs callbacks around a stream: on each update, and once at its end with the exception that ended
/// it (null when complete; an <see cref="OperationCanceledException"/> when the consumer stopped early).
/// The middlewares that observe a call (accounting, budget, telemetry, cache) share this loop.
/// </summary>
internal static class StreamObserver
{
    public static async IAsyncEnumerable<ChatResponseUpdate> Observe(
        IAsyncEnumerable<ChatResponseUpdate> source, Action<ChatResponseUpdate>? onUpdate, Func<Exception?, ValueTask> onEnd,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var ended = false;
        var e = source.GetAsyncEnumerator(cancellationToken);
        try
        {
            while (true)
            {
                bool has;
                try
                {
                    has = await e.MoveNextAsync();
                }
                catch (Exception ex)
                {
                    ended = true;
                    await onEnd(ex);
                    throw;
                }
                if (!has)
                {
                    ended = true;
                    await onEnd(null);
                    yield break;
                }
                onUpdate?.Invoke(e.Current);
                yield return e.Current;
            }
        }
        finally
        {
            if (!ended)
            {
                await onEnd(new OperationCanceledException("The consumer stopped reading the stream."));
            }
            await e.DisposeAsync();
        }
    }
}
