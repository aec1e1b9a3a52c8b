using System.Text.RegularExpressions;

namespace Jackcwf.Testing;

/// <summary>How <see cref="FakeLlmServer"/> answers one request.</summary>
public sealed partial record FakeScenario
{
    /// <summary>The answer; <c>null</c> echoes the text of the last user message.</summary>
    public string? Text { get; init; }

    /// <summary>Wait before the first token (or before the error when <see cref="ErrorStatus"/> is set).</summary>
    public TimeSpan FirstTokenDelay { get; init; }

    /// <summary>Wait between two streamed chunks.</summary>
    public TimeSpan ChunkDelay { get; init; }

    /// <summary>Reported prompt tokens; <c>null</c> counts the words of every message in the request.</summary>
    public int? InputTokens { get; init; }

    /// <summary>Reported completion tokens; <c>null</c> counts the words of the answer.</summary>
    public int? OutputTokens { get; init; }

    /// <summary>When set, the request fails with this HTTP status (in the provider's error shape) before any token.</summary>
    public int? ErrorStatus { get; init; }

    /// <summary>Message of the provider error body.</summary>
    public string ErrorMessage { get; init; } = "The fake provider failed as instructed.";

    /// <summary>Sent as <c>retry-after</c>/<c>retry-after-ms</c> with an error, so SDK retries wait exactly this long.</summary>
    public TimeSpan? RetryAfter { get; init; }

    /// <summary>When set, a stream sends this many text chunks and then the connection is aborted.</summary>
    public int? FailAfterChunks { get; init; }

    /// <summary>
    /// When set, a stream sends this many text chunks and then an error event in the provider's format
    /// (Anthropic <c>event: error</c>, OpenAI a <c>data: {"error":…}</c> line) with <see cref="ErrorMessage"/>,
    /// and ends; the HTTP status stays 200, as with the real APIs. A non-streaming request gets the
    /// error as its response (status <see cref="ErrorStatus"/>, else 500 for OpenAI and 529 for Anthropic).
    /// </summary>
    public int? StreamErrorAfterChunks { get; init; }

    /// <summary>
    /// When set, the model asks for this tool instead of answering with text (OpenAI <c>tool_calls</c>
    /// with <c>finish_reason: "tool_calls"</c>, Anthropic a <c>tool_use</c> block with
    /// <c>stop_reason: "tool_use"</c>); streamed, the arguments arrive in two pieces.
    /// </summary>
    public FakeToolCall? ToolCall { get; init; }

    /// <summary>
    /// When true, the answer is <see cref="Text"/> (or nothing) followed by the content of the last tool
    /// result in the request (<see cref="FakeLlmRequest.LastToolResult"/>), proving the result reached the model.
    /// </summary>
    public bool EchoToolResult { get; init; }

    /// <summary>
    /// When set, an OpenAI stream sends its headers and its role chunk, then holds its first text chunk
    /// until this task completes: a model that accepted the call and is still thinking.
    /// </summary>
    public Task? HoldFirstToken { get; init; }

    /// <summary>Never answers: the request stays open until the client cancels it or the server stops.</summary>
    public bool Hang { get; init; }

    /// <summary>Echo of the last user message, no delays; the server's default.</summary>
    public static FakeScenario Echo { get; } = new();

    /// <summary>The model asks for <paramref name="name"/> with <paramref name="argumentsJson"/>.</summary>
    public static FakeScenario CallTool(string name, string argumentsJson, string id = "call_fake_1") =>
        new() { ToolCall = new FakeToolCall(id, name, argumentsJson) };

    /// <summary>A fixed answer.</summary>
    public static FakeScenario Answer(string text) => new() { Text = text };

    /// <summary>A provider error with <paramref name="status"/> before the first token.</summary>
    public static FakeScenario Error(int status, string? message = null) =>
        new() { ErrorStatus = status, ErrorMessage = message ?? $"The fake provider failed with {status}." };

    /// <summary>
    /// Splits <paramref name="text"/> into word-sized chunks whose concatenation is exactly the text:
    /// each chunk is the whitespace before a word plus the word; trailing whitespace joins the last chunk.
    /// </summary>
    public static IReadOnlyList<string> SplitIntoChunks(string text)
    {
        var chunks = new List<string>();
        foreach (Match match in WordWithLeadingSpace().Matches(text))
        {
            chunks.Add(match.Value);
        }

        var consumed = chunks.Sum(c => c.Length);
        if (consumed < text.Length)
        {
            var rest = text[consumed..];
            if (chunks.Count == 0)
            {
                chunks.Add(rest);
            }
            else
            {
                chunks[^1] += rest;
            }
        }

        return chunks;
    }

    /// <summary>Number of whitespace-separated words, the fake's notion of a token.</summary>
    public static int CountWords(string? text) =>
        string.IsNullOrWhiteSpace(text) ? 0 : WordWithLeadingSpace().Count(text);

    [GeneratedRegex(@"\s*\S+")]
    private static partial Regex WordWithLeadingSpace();
}

/// <summary>A tool call the fake model makes: <paramref name="ArgumentsJson"/> is a JSON object.</summary>
public sealed record FakeToolCall(string Id, string Name, string ArgumentsJson);
