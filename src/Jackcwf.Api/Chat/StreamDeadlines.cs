namespace Jackcwf.Api.Chat;

/// <summary>
/// One timer for every open stream: waits that end at a deadline (keep-alive silences, re-reads of
/// the event log, database follow-ups) register the deadline here instead of starting a timer of
/// their own, and a single timer completes the due ones every <see cref="Resolution"/>. Ten thousand
/// idle streams cost one timer and a heap entry each, not ten thousand timers.
/// </summary>
/// <remarks>
/// Hand-written: .NET's timer queue gives each <c>Task.Delay</c> its own timer object and
/// <c>TimeProvider</c> has no shared-deadline scheduler. Deadlines are checked with
/// <see cref="TimeProvider"/> timestamps, so a test can drive them with a fake clock.
/// </remarks>
public sealed class StreamDeadlines : IDisposable
{
    /// <summary>How late a deadline may complete: waits here are for seconds-long silences, never precise timing.</summary>
    public static readonly TimeSpan Resolution = TimeSpan.FromMilliseconds(100);

    /// <summary>The process-wide instance (what dependency injection hands out too).</summary>
    public static StreamDeadlines Shared { get; } = new(TimeProvider.System);

    private readonly PriorityQueue<TaskCompletionSource, long> _due = new();
    private readonly Lock _lock = new();
    private readonly TimeProvider _time;
    private readonly ITimer _timer;

    public StreamDeadlines(TimeProvider time)
    {
        _time = time;
        _timer = time.CreateTimer(_ => CompleteDue(), null, Resolution, Resolution);
    }

    /// <summary>Waits registered and not yet due (a wait that ended early on a signal stays until its deadline).</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _due.Count;
            }
        }
    }

    /// <summary>A task that completes once <paramref name="delay"/> has passed (within <see cref="Resolution"/>); never faults.</summary>
    public Task Delay(TimeSpan delay)
    {
        if (delay <= TimeSpan.Zero)
        {
            return Task.CompletedTask;
        }
        // Continuations run on the thread pool, not on the timer's thread.
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var due = _time.GetTimestamp() + (long)(delay.TotalSeconds * _time.TimestampFrequency);
        lock (_lock)
        {
            _due.Enqueue(done, due);
        }
        return done.Task;
    }

    /// <summary>Waits until <paramref name="signal"/> completes or <paramref name="delay"/> passes; true when the signal came first.</summary>
    public async Task<bool> WaitAsync(Task signal, TimeSpan delay, CancellationToken ct)
    {
        if (!signal.IsCompleted)
        {
            await Task.WhenAny(signal, Delay(delay)).WaitAsync(ct);
        }
        ct.ThrowIfCancellationRequested();
        return signal.IsCompleted;
    }

    private void CompleteDue()
    {
        var now = _time.GetTimestamp();
        List<TaskCompletionSource>? ready = null;
        lock (_lock)
        {
            while (_due.TryPeek(out var done, out var at) && at <= now)
            {
                _due.Dequeue();
                (ready ??= []).Add(done);
            }
        }
        if (ready is not null)
        {
            foreach (var done in ready)
            {
                done.TrySetResult();
            }
        }
    }

    public void Dispose() => _timer.Dispose();
}
