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
        var inputTokens = list.Sum(m => CountWords(m.Text));
        var chunks = SplitWords(last);
        var limit = options?.MaxOutputTokens is > 0 and var max ? max : int.MaxValue;
        var responseId = Guid.NewGuid().ToString("N");
        var emitted = 0;
        foreach (var chunk in chunks)
        {
            if (emitted >= limit)
            {
                break;
            }
            if (chunkDelay > TimeSpan.Zero)
            {
                await Task.Delay(chunkDelay, cancellationToken);
            }
            cancellationToken.ThrowIfCancellationRequested();
            emitted++;
            yield return new ChatResponseUpdate(ChatRole.Assistant, chunk) { ResponseId = responseId, ModelId = "echo" };
        }
        yield return new ChatResponseUpdate
        {
            Role = ChatRole.Assistant,
            ResponseId = responseId,
            ModelId = "echo",
            FinishReason = emitted < chunks.Count ? ChatFinishReason.Length : ChatFinishReason.Stop,
            Contents = [new UsageContent(new UsageDetails { InputTokenCount = inputTokens, OutputTokenCount = emitted, TotalTokenCount = inputTokens + emitted })],
        };
    }

    /// <summary>Word-sized pieces: leading whitespace, then each word with its trailing whitespace.</summary>
    public static List<string> SplitWords(string text)
    {
        var chunks = new List<string>();
        var i = 0;
        while (i < text.Length)
        {
            var start = i;
            while (i < text.Length && char.IsWhiteSpace(text[i]) && start == 0)
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
            chunks.Add(text[start..i]);
        }
        return chunks;
    }

    private static int CountWords(string? text) => string.IsNullOrEmpty(text) ? 0 : SplitWords(text).Count;

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceType == typeof(ChatClientMetadata) ? new ChatClientMetadata("demo", null, "echo") :
        serviceType.IsInstanceOfType(this) ? this : null;

    public void Dispose()
    {
    }
}
