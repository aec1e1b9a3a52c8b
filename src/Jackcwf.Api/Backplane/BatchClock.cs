namespace Jackcwf.Api.Backplane;

/// <summary>Something the <see cref="BatchClock"/> calls back once its wait is over.</summary>
internal interface IBatchDue
{
    /// <summary>Called on the clock's timer thread: start the work and return (never block).</summary>
    void Due();
}

/// <summary>
/// One timer for every running answer's next Redis batch: a writer with text to send registers here and is
/// called back <see cref="Wait"/> later. Every wait has the same length, so waits fall due in the order they
/// were registered: a queue, whose head's due time the one timer is set to, and which is off when no answer
/// is being written.
/// </summary>
/// <remarks>
/// Hand-written: each batch used to wait with its own <c>Task.Delay</c> (a timer, its task and the awaiting
/// method's state: about 320 bytes and a timer queue entry, every 40 ms of every running answer);
/// <see cref="Chat.StreamDeadlines"/>' shared timer ticks every 100 ms, too coarse for a 40 ms batch, and
/// .NET has no scheduler that shares one timer between many equal short waits. The timer is set at least
/// <see cref="Grain"/> ahead, so waits falling due within it of each other are called back together (at
/// 10,000 streams writing, the timer fires at most once per grain instead of once per batch): none is called
/// back early, none more than a grain late (and the timer's own latency).
/// </remarks>
internal sealed class BatchClock : IDisposable
{
    /// <summary>The timer is never set closer than this: waits due within it are called back together.</summary>
    public static readonly TimeSpan Grain = TimeSpan.FromMilliseconds(2);

    private readonly Queue<(long Due, IBatchDue Batch)> _queue = new();
    private readonly Lock _lock = new();
    private readonly TimeProvider _time;
    private readonly long _wait;
    private readonly ITimer _timer;
    private bool _armed;

    public BatchClock(TimeProvider time, TimeSpan wait)
    {
        _time = time;
        Wait = wait;
        _wait = (long)(wait.TotalSeconds * time.TimestampFrequency);
        _timer = time.CreateTimer(_ => OnTimer(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>How long each registered batch waits.</summary>
    public TimeSpan Wait { get; }

    /// <summary>Batches registered and not yet called back.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _queue.Count;
            }
        }
    }

    /// <summary>Calls <paramref name="batch"/>'s <see cref="IBatchDue.Due"/> once <see cref="Wait"/> has passed.</summary>
    public void Schedule(IBatchDue batch)
    {
        var due = _time.GetTimestamp() + _wait;
        lock (_lock)
        {
            _queue.Enqueue((due, batch));
            if (!_armed)
            {
                _armed = true;
                _timer.Change(Wait, Timeout.InfiniteTimeSpan);
            }
        }
    }

    private void OnTimer()
    {
        List<IBatchDue>? due = null;
        lock (_lock)
        {
            var now = _time.GetTimestamp();
            while (_queue.TryPeek(out var head) && head.Due <= now)
            {
                _queue.Dequeue();
                (due ??= []).Add(head.Batch);
            }
            if (_queue.TryPeek(out var next))
            {
                // The next head's time, rounded up to the timer's millisecond (never early), a grain at least.
                var ms = Math.Ceiling((next.Due - now) * 1000.0 / _time.TimestampFrequency);
                _timer.Change(TimeSpan.FromMilliseconds(Math.Max(ms, Grain.TotalMilliseconds)), Timeout.InfiniteTimeSpan);
            }
            else
            {
                _armed = false;
            }
        }
        if (due is not null)
        {
            foreach (var batch in due)
            {
                batch.Due();
            }
        }
    }

    public void Dispose() => _timer.Dispose();
}
