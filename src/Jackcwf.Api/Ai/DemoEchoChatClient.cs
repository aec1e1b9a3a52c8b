using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;

namespace Jackcwf.Api.Ai;

/// <summary>
/// The built-in <c>demo/echo</c> model: answers with the last user message verbatim, in word-sized
/// chunks (each word with the whitespace that follows it, so the chunks concatenate to the exact
/// text), a fixed delay apart. Needs no key and no network; reports token usage.
/// </summary>
public sealed class DemoEchoChatClient(TimeSpan chunkDelay) : IChatClient
{
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var updates = new List<ChatResponseUpdate>();
        await foreach (var u in GetStreamingResponseAsync(messages, options, cancellationToken))
        {
            updates.Add(u);
        }
        return updates.ToChatResponse();
    }

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var list = messages as IList<ChatMessage> ?? messages.ToList();
        var last = list.LastOrDefault(m => m.Role == ChatRole.User)?.Text ?? "";
        var inputTokens = 0;
        foreach (var m in list)
        {
            inputTokens += CountWords(m.Text);
        }
        var limit = options?.MaxOutputTokens is > 0 and var max ? max : int.MaxValue;
        var responseId = Guid.NewGuid().ToString("N");
        var emitted = 0;
        // Each word is cut from the message when it is sent: a long answer streaming slowly holds the
        // message it echoes, not a string per word for its whole life (what the capacity check's
        // 10,000 demo streams measure).
        var start = 0;
        while (start < last.Length && emitted < limit)
        {
            if (chunkDelay > TimeSpan.Zero)
            {
                await Task.Delay(chunkDelay, cancellationToken);
            }
            cancellationToken.ThrowIfCancellationRequested();
            var end = WordEnd(last, start);
            emitted++;
            yield return new ChatResponseUpdate(ChatRole.Assistant, last[start..end]) { ResponseId = responseId, ModelId = "echo" };
            start = end;
        }
        yield return new ChatResponseUpdate
        {
            Role = ChatRole.Assistant,
            ResponseId = responseId,
            ModelId = "echo",
            FinishReason = start < last.Length ? ChatFinishReason.Length : ChatFinishReason.Stop,
            Contents = [new UsageContent(new UsageDetails { InputTokenCount = inputTokens, OutputTokenCount = emitted, TotalTokenCount = inputTokens + emitted })],
        };
    }

    /// <summary>
    /// Where the word-sized piece starting at <paramref name="start"/> ends: the first piece takes the
    /// leading whitespace, then each piece is a word with the whitespace that follows it.
    /// </summary>
    private static int WordEnd(string text, int start)
    {
        var i = start;
        while (start == 0 && i < text.Length && char.IsWhiteSpace(text[i]))
        {
            i++;
        }
        while (i < text.Length && !char.IsWhiteSpace(text[i]))
        {
            i++;
        }
        while (i < text.Length && char.IsWhiteSpace(text[i]))
        {
            i++;
        }
        return i;
    }

    /// <summary>How many word-sized pieces the model sends for <paramref name="text"/> (its token count).</summary>
    private static int CountWords(string? text)
    {
        var count = 0;
        for (var i = 0; text is not null && i < text.Length; i = WordEnd(text, i))
        {
            count++;
        }
        return count;
    }

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceType == typeof(ChatClientMetadata) ? new ChatClientMetadata("demo", null, "echo") :
        serviceType.IsInstanceOfType(this) ? this : null;

    public void Dispose()
    {
    }
}
