using System.Text;

namespace Jackcwf.Api.Chat;

/// <summary>
/// The text of a running answer, kept once: the generation appends to it, and the checkpoints, the
/// event log (its local readers and the Redis writer's batches) and the final write read it. Before,
/// each of them kept a copy of its own (the answer about three times, plus an event and an id string
/// per delta). Thread-safe; text is only ever appended.
/// </summary>
public sealed class AnswerText
{
    private readonly StringBuilder _text = new();
    private readonly Lock _lock = new();

    public int Length
    {
        get
        {
            lock (_lock)
            {
                return _text.Length;
            }
        }
    }

    /// <summary>Appends <paramref name="delta"/>; returns the length after it (the delta's end offset).</summary>
    public int Append(string delta)
    {
        lock (_lock)
        {
            _text.Append(delta);
            return _text.Length;
        }
    }

    /// <summary>Appends <paramref name="delta"/> when the text ends before <paramref name="end"/> (it was not appended yet).</summary>
    internal void AppendUpTo(string delta, int end)
    {
        lock (_lock)
        {
            if (_text.Length < end)
            {
                _text.Append(delta);
            }
        }
    }

    /// <summary>The text from <paramref name="start"/> to <paramref name="end"/>; empty when there is none.</summary>
    public string Slice(int start, int end)
    {
        lock (_lock)
        {
            end = Math.Min(end, _text.Length);
            return end > start ? _text.ToString(start, end - start) : "";
        }
    }

    public override string ToString()
    {
        lock (_lock)
        {
            return _text.ToString();
        }
    }
}
