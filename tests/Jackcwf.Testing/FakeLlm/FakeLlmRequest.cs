namespace Jackcwf.Testing;

/// <summary>One request as <see cref="FakeLlmServer"/> received it.</summary>
public sealed record FakeLlmRequest(
    string Method,
    string Path,
    FakeLlmProvider Provider,
    string? Model,
    bool Stream,
    IReadOnlyDictionary<string, string> Headers,
    string Body,
    string? LastUserText,
    DateTimeOffset ReceivedAt)
{
    /// <summary>The credential the client sent: <c>x-api-key</c>, or the token of <c>Authorization: Bearer</c>.</summary>
    public string? ApiKey =>
        Headers.TryGetValue("x-api-key", out var key) ? key
        : Headers.TryGetValue("authorization", out var auth) && auth.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
            ? auth["Bearer ".Length..].Trim()
            : null;

    /// <summary>
    /// The content of the last tool result in the request: OpenAI's last <c>role: "tool"</c> message,
    /// Anthropic's last <c>tool_result</c> block; <c>null</c> when there is none.
    /// </summary>
    public string? LastToolResult => FakeLlmServer.LastToolResult(Body);

    /// <summary>A header by case-insensitive name, or <c>null</c>.</summary>
    public string? Header(string name) => Headers.TryGetValue(name, out var value) ? value : null;
}

/// <summary>Which wire format a request used.</summary>
public enum FakeLlmProvider
{
    Other,
    OpenAI,
    Anthropic,
}
