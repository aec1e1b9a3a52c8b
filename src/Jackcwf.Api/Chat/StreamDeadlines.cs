namespace Jackcwf.Api.Chat;

/// <summary>
/// One timer for every open stream: waits that end at a deadline (keep-alive silences, re-reads of
/// the event log, database follow-ups) register the deadline here instead of starting a timer of
/// their own, and a single timer completes the due ones every <see cref="Resolution"/>. Deadlines are
/// rounded up to a grid of a quarter of it, and every wait ending in the same grid step shares one
/// task: ten thousand idle streams cost one timer and at most a few hundred pending tasks (one per
/// step that some wait ends in), not ten thousand timers or a task per wait. That matters because a
/// wait that ends early on its signal (a streamed answer's next delta, once a second) leaves its
/// deadline registered until it is due: with a task per wait, each open stream held about fifteen.
/// </summary>
/// <remarks>
/// Hand-written: .NET's timer queue gives each <c>Task.Delay</c> its own timer object and
/// <c>TimeProvider</c> has no shared-deadline scheduler. Deadlines are checked with
/// <see cref="TimeProvider"/> timestamps, so a test can drive them with a fake clock.
/// </remarks>
public sealed class StreamDeadlines : IDisposable
{
    /// <summary>How often the timer completes due waits: waits here are for seconds-long silences, never precise timing.</summary>
    public static readonly TimeSpan Resolution = TimeSpan.FromMilliseconds(100);

    /// <summary>The grid deadlines are rounded up to; waits ending in the same step share one task.</summary>
    public static readonly TimeSpan Step = Resolution / 4;

    /// <summary>The process-wide instance (what dependency injection hands out too).</summary>
    public static StreamDeadlines Shared { get; } = new(TimeProvider.System);

    /// <summary>The pending steps, by step number (the deadline's timestamp divided by <see cref="_step"/>, rounded up).</summary>
    private readonly PriorityQueue<TaskCompletionSource, long> _due = new();
    private readonly Dictionary<long, TaskCompletionSource> _byStep = [];
    private readonly Lock _lock = new();
    private readonly TimeProvider _time;
    private readonly long _step;
    private readonly ITimer _timer;

    public StreamDeadlines(TimeProvider time)
    {
        _time = time;
        _step = Math.Max(1, (long)(Step.TotalSeconds * time.TimestampFrequency));
        _timer = time.CreateTimer(_ => CompleteDue(), null, Resolution, Resolution);
    }

    /// <summary>Pending grid steps: distinct deadlines registered and not yet due (a wait that ended early on a signal stays until its deadline).</summary>
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

    /// <summary>
    /// A task that completes once <paramref name="delay"/> has passed, never earlier and at most
    /// <see cref="Step"/> and <see cref="Resolution"/> later; never faults. Waits ending in the same
    /// step get the same task.
    /// </summary>
    public Task Delay(TimeSpan delay)
    {
        if (delay <= TimeSpan.Zero)
        {
            return Task.CompletedTask;
        }
        var due = _time.GetTimestamp() + (long)(delay.TotalSeconds * _time.TimestampFrequency);
        var step = due / _step + (due % _step == 0 ? 0 : 1);
        lock (_lock)
        {
            if (!_byStep.TryGetValue(step, out var done))
            {
                // Continuations run on the thread pool, not on the timer's thread.
                done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _byStep.Add(step, done);
                _due.Enqueue(done, step);
            }
            return done.Task;
        }
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
            while (_due.TryPeek(out var done, out var step) && step * _step <= now)
            {
                _due.Dequeue();
                _byStep.Remove(step);
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
