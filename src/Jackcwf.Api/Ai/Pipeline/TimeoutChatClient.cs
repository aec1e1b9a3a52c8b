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
    public override IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var call = new Call(this, messages, options);
        return StreamObserver.Start(call.Start, call.Update, call.EndAsync, cancellationToken, fail: call.Stalled);
    }

    private TimeSpan FirstToken => firstToken;
    private TimeSpan Idle => idle;
    private string Provider => provider;

    /// <summary>One streamed call: its deadline, and the token the deadline cancels.</summary>
    private sealed class Call(TimeoutChatClient owner, IEnumerable<ChatMessage> messages, ChatOptions? options) : IDisposable
    {
        private CancellationToken _token;
        private CancellationTokenSource? _cts;
        private Deadline? _deadline;
        private bool _started;

        public ValueTask<StartedStream> Start(CancellationToken cancellationToken)
        {
            _token = cancellationToken;
            _cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            _deadline = new Deadline(_cts, owner.FirstToken);
            return new(StartedStream.Unread(owner.InnerStream(messages, options, _cts.Token).GetAsyncEnumerator(_cts.Token), this));
        }

        public void Update(ChatResponseUpdate update)
        {
            if (!_started && StartedStream.IsStart(update))
            {
                _started = true;
                _deadline!.Restart(owner.Idle);
            }
            else
            {
                _deadline!.Touch();
            }
        }

        public Exception Stalled(Exception ex) =>
            _cts!.IsCancellationRequested && !_token.IsCancellationRequested
                ? new ProviderException(ProviderFailure.Stalled(owner.Provider, _started, _started ? owner.Idle : owner.FirstToken))
                : ex;

        /// <summary>The stream ended: its deadline stops at once (the token source goes with the source's disposal).</summary>
        public ValueTask EndAsync(Exception? ended)
        {
            _deadline?.Dispose();
            return ValueTask.CompletedTask;
        }

        public void Dispose()
        {
            _deadline?.Dispose();
            _cts?.Dispose();
        }
    }

    private IAsyncEnumerable<ChatResponseUpdate> InnerStream(IEnumerable<ChatMessage> messages, ChatOptions? options, CancellationToken cancellationToken) =>
        base.GetStreamingResponseAsync(messages, options, cancellationToken);

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
