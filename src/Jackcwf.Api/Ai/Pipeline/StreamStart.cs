using Microsoft.Extensions.AI;

namespace Jackcwf.Api.Ai.Pipeline;

/// <summary>
/// A stream read up to its first token. Retries, the circuit breaker and fallbacks act only on what
/// happens before the first token (after it the caller has text and a retry would duplicate it), so
/// each of them runs <see cref="StartAsync"/> under its policy and then hands on the rest unchanged
/// (<see cref="StreamObserver.Start"/>: the updates read here, then the source's own).
/// </summary>
internal sealed class StartedStream
{
    private StartedStream(IAsyncEnumerator<ChatResponseUpdate> enumerator, List<ChatResponseUpdate>? head, bool ended, IDisposable? resources = null)
    {
        Enumerator = enumerator;
        Head = head;
        Ended = ended;
        Resources = resources;
    }

    /// <summary>What the layer holds for the call (a timer, a token source), disposed after <see cref="Enumerator"/>.</summary>
    public IDisposable? Resources { get; }

    /// <summary>The source, positioned after <see cref="Head"/>.</summary>
    public IAsyncEnumerator<ChatResponseUpdate> Enumerator { get; }

    /// <summary>The updates read up to the first token (null: none was read).</summary>
    public List<ChatResponseUpdate>? Head { get; }

    /// <summary>Whether the source ended within <see cref="Head"/>.</summary>
    public bool Ended { get; }

    /// <summary>A source nothing was read from yet (a layer that acts only on each update or at the end).</summary>
    public static StartedStream Unread(IAsyncEnumerator<ChatResponseUpdate> enumerator, IDisposable? resources = null) =>
        new(enumerator, null, false, resources);

    public static async Task<StartedStream> StartAsync(IAsyncEnumerable<ChatResponseUpdate> source, CancellationToken cancellationToken)
    {
        var e = source.GetAsyncEnumerator(cancellationToken);
        var head = new List<ChatResponseUpdate>();
        try
        {
            while (await e.MoveNextAsync())
            {
                head.Add(e.Current);
                if (IsStart(e.Current))
                {
                    return new(e, head, false);
                }
            }
            return new(e, head, true);
        }
        catch
        {
            await e.DisposeAsync();
            throw;
        }
    }

    /// <summary>The first update that carries output (text, a tool call) or ends the answer.</summary>
    public static bool IsStart(ChatResponseUpdate update)
    {
        if (update.FinishReason is not null)
        {
            return true;
        }
        // Indexed, not foreach or LINQ: every layer asks this of every update, and an enumerator of the IList is an allocation.
        var contents = update.Contents;
        for (var i = 0; i < contents.Count; i++)
        {
            if (contents[i] is not UsageContent and not TextContent { Text.Length: 0 })
            {
                return true;
            }
        }
        return false;
    }
}
