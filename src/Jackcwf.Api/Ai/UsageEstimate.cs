using Microsoft.Extensions.AI;

namespace Jackcwf.Api.Ai;

/// <summary>Tokens for answers whose provider reported no usage (stopped or broken streams).</summary>
public static class UsageEstimate
{
    /// <summary>
    /// About 4 characters a token, so cost is never silently zero; nothing when the provider failed
    /// before answering (providers do not bill errors).
    /// </summary>
    public static (long Input, long Output) For(IEnumerable<ChatMessage> prompt, int answerLength, bool failed) =>
        failed && answerLength == 0
            ? (0, 0)
            : (prompt.Sum(m => (m.Text?.Length ?? 0) + 3) / 4, (answerLength + 3) / 4);
}
