using Microsoft.Extensions.AI;

namespace Jackcwf.Api.Ai.Pipeline;

/// <summary>
/// A stream read up to its first token. Retries, the circuit breaker and fallbacks act only on what
/// happens before the first token (after it the caller has text and a retry would duplicate it), so
/// each of them runs <see cref="StartAsync"/> under its policy and then hands on the rest unchanged.
/// </summary>
internal sealed class StartedStream(IAsyncEnumerator<ChatResponseUpdate> enumerator, List<ChatResponseUpdate> head, bool ended)
{
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

    public async IAsyncEnumerable<ChatResponseUpdate> RestAsync()
    {
        await using (enumerator)
        {
            // Handed on once: the list lets go of each update, so an open stream does not hold them.
            for (var i = 0; i < head.Count; i++)
            {
                var u = head[i];
                head[i] = null!;
                yield return u;
            }
            head.Clear();
            if (ended)
            {
                yield break;
            }
            while (await enumerator.MoveNextAsync())
            {
                yield return enumerator.Current;
            }
        }
    }
}
