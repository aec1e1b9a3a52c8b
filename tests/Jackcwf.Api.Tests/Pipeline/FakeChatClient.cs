using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;

namespace Jackcwf.Api.Tests.Pipeline;

/// <summary>One scripted answer of <see cref="FakeChatClient"/>.</summary>
public sealed record FakeTurn
{
    public IReadOnlyList<string> Chunks { get; init; } = ["Hello", " there", "."];
    /// <summary>Thrown before the first chunk.</summary>
    public Exception? FailBefore { get; init; }
    /// <summary>Thrown after this many chunks.</summary>
    public (int Chunks, Exception Error)? FailAfter { get; init; }
    /// <summary>After this many chunks, wait until cancelled.</summary>
    public int? StallAfter { get; init; }
    public bool Finish { get; init; } = true;
    public long? InputTokens { get; init; } = 10;
    public long? OutputTokens { get; init; } = 20;

    public static FakeTurn Text(params string[] chunks) => new() { Chunks = chunks };

    public static FakeTurn Failing(Exception e) => new() { FailBefore = e };
}

/// <summary>
/// A chat client that answers from a script (then <see cref="Default"/>), counts calls and keeps the
/// options it was given, for unit tests of one middleware at a time.
/// </summary>
public sealed class FakeChatClient : IChatClient
{
    private readonly Queue<FakeTurn> _script = new();
    private int _calls;

    public FakeTurn Default { get; set; } = new();
    public int Calls => Volatile.Read(ref _calls);
    public List<ChatOptions?> SeenOptions { get; } = [];

    public FakeChatClient Then(FakeTurn turn, int times = 1)
    {
        lock (_script)
        {
            for (var i = 0; i < times; i++)
            {
                _script.Enqueue(turn);
            }
        }
        return this;
    }

    private FakeTurn Next(ChatOptions? options)
    {
        Interlocked.Increment(ref _calls);
        lock (_script)
        {
            SeenOptions.Add(options);
            return _script.TryDequeue(out var t) ? t : Default;
        }
    }

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var turn = Next(options);
        await Task.Yield();
        if (turn.FailBefore is { } e)
        {
            throw e;
        }
        return new ChatResponse(new ChatMessage(ChatRole.Assistant, string.Concat(turn.Chunks)))
        {
            FinishReason = turn.Finish ? ChatFinishReason.Stop : null,
            Usage = new UsageDetails { InputTokenCount = turn.InputTokens, OutputTokenCount = turn.OutputTokens },
        };
    }

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var turn = Next(options);
        await Task.Yield();
        if (turn.FailBefore is { } e)
        {
            throw e;
        }
        yield return new ChatResponseUpdate { Role = ChatRole.Assistant, Contents = [new TextContent("")] };
        for (var i = 0; i < turn.Chunks.Count; i++)
        {
            if (turn.FailAfter is { } f && f.Chunks == i)
            {
                throw f.Error;
            }
            if (turn.StallAfter == i)
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }
            yield return new ChatResponseUpdate(ChatRole.Assistant, turn.Chunks[i]);
        }
        if (turn.Finish)
        {
            yield return new ChatResponseUpdate
            {
                FinishReason = ChatFinishReason.Stop,
                Contents = [new UsageContent(new UsageDetails { InputTokenCount = turn.InputTokens, OutputTokenCount = turn.OutputTokens })],
            };
        }
    }

    public object? GetService(Type serviceType, object? serviceKey = null) => null;

    public void Dispose()
    {
    }
}
