namespace Jackcwf.Testing;

/// <summary>A thread-safe buffer of output lines that tests can wait on.</summary>
public sealed class LogCapture
{
    private readonly Lock _gate = new();
    private readonly List<string> _lines = [];
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Snapshot of the lines so far.</summary>
    public IReadOnlyList<string> Lines
    {
        get { lock (_gate) { return [.. _lines]; } }
    }

    /// <summary>All lines joined with newlines.</summary>
    public string Text
    {
        get { lock (_gate) { return string.Join('\n', _lines); } }
    }

    public void Add(string line)
    {
        TaskCompletionSource changed;
        lock (_gate)
        {
            _lines.Add(line);
            changed = _changed;
            _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        changed.TrySetResult();
    }

    public void Clear()
    {
        lock (_gate)
        {
            _lines.Clear();
        }
    }

    /// <summary>Waits until a line contains <paramref name="substring"/> (lines already captured count) and returns it.</summary>
    public Task<string> WaitForAsync(string substring, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        WaitForAsync(line => line.Contains(substring, StringComparison.Ordinal), $"a line containing \"{substring}\"", timeout, cancellationToken);

    /// <summary>Waits until a line matches <paramref name="predicate"/> and returns it.</summary>
    public async Task<string> WaitForAsync(Func<string, bool> predicate, string description, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        var checkedCount = 0;
        while (true)
        {
            Task changed;
            lock (_gate)
            {
                for (; checkedCount < _lines.Count; checkedCount++)
                {
                    if (predicate(_lines[checkedCount]))
                    {
                        return _lines[checkedCount];
                    }
                }

                changed = _changed.Task;
            }

            try
            {
                await changed.WaitAsync(cts.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new TimeoutException($"No {description} within {timeout}. Captured output:\n{Text}");
            }
        }
    }
}
