using System.Diagnostics;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;

namespace Jackcwf.Api.Ai.Pipeline;

/// <summary>
/// Time to first token and idle time between tokens: a stalled provider ends the call as a
/// <c>timeout</c> failure within the limit (the caller keeps the text so far). One timer per call
/// that an update does not touch: an update only stamps its time, and the timer, when it comes due
/// while updates kept arriving, waits out the rest of the limit from the last one (re-arming a
/// cancellation timer on every chunk took a lock on the process's timer queue per chunk).
/// </summary>
public sealed class TimeoutChatClient(IChatClient inner, TimeSpan firstToken, TimeSpan idle, string provider) : DelegatingChatClient(inner)
{
    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var deadline = new Deadline(cts, firstToken);
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
                if (!started && StartedStream.IsStart(e.Current))
                {
                    started = true;
                    deadline.Restart(idle);
                }
                else
                {
                    deadline.Touch();
                }
                yield return e.Current;
            }
        }
    }

    /// <summary>Cancels a call once <c>limit</c> passed since its last update.</summary>
    private sealed class Deadline : IDisposable
    {
        private readonly CancellationTokenSource _cts;
        private readonly Timer _timer;
        private readonly Lock _lock = new();
        private long _last = Stopwatch.GetTimestamp();
        private TimeSpan _limit;
        private bool _done;

        public Deadline(CancellationTokenSource cts, TimeSpan limit)
        {
            _cts = cts;
            _limit = limit;
            _timer = new Timer(static s => ((Deadline)s!).Due(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            _timer.Change(limit, Timeout.InfiniteTimeSpan);
        }

        /// <summary>An update arrived: the limit counts from now.</summary>
        public void Touch() => Volatile.Write(ref _last, Stopwatch.GetTimestamp());

        /// <summary>An update arrived and the limit changes (first token to idle): counts from now.</summary>
        public void Restart(TimeSpan limit)
        {
            lock (_lock)
            {
                _limit = limit;
                _last = Stopwatch.GetTimestamp();
                if (!_done)
                {
                    _timer.Change(limit, Timeout.InfiniteTimeSpan);
                }
            }
        }

        private void Due()
        {
            lock (_lock)
            {
                if (_done)
                {
                    return;
                }
                var left = _limit - Stopwatch.GetElapsedTime(Volatile.Read(ref _last));
                // The timer counts whole milliseconds: less than one left is due.
                if (left >= TimeSpan.FromMilliseconds(1))
                {
                    _timer.Change(left, Timeout.InfiniteTimeSpan);
                    return;
                }
                _done = true;
            }
            try
            {
                _cts.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // The call ended (and disposed its token source) as the limit passed.
            }
        }

        public void Dispose()
        {
            lock (_lock)
            {
                _done = true;
            }
            _timer.Dispose();
        }
    }
}
