using Jackcwf.Api.ErrorHandling;
using Jackcwf.Api.Limits;
using Jackcwf.Api.Telemetry;
using Jackcwf.Api.Web;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Jackcwf.Api.Conversations;

/// <summary>
/// The storage caps checked before a turn stores anything: messages per conversation and characters
/// per account. Both are reads of bounded size (an index count of one conversation, one counter row).
/// Concurrent turns of one account can pass together, so a cap can be exceeded by at most the
/// account's concurrent generations (and the answers they write).
/// </summary>
public static class ConversationQuota
{
    /// <summary>The check on counts the caller read: the conversation's messages and the account's stored characters.</summary>
    public static ProblemHttpResult? Check(LimitsOptions limits, JackcwfMetrics metrics, int count, long stored, int newMessages, int newChars)
    {
        if (count + newMessages > limits.MaxMessagesPerConversation)
        {
            metrics.LimitRefused("conversation_messages");
            return Problems.LimitReached("conversation_full", "conversation_messages", "This conversation is full",
                $"A conversation holds at most {limits.MaxMessagesPerConversation} messages (this one has {count}). Start a new conversation to go on.");
        }
        if (stored + newChars > limits.MaxStoredCharsPerUser || stored >= limits.MaxStoredCharsPerUser)
        {
            metrics.LimitRefused("storage");
            return Problems.LimitReached("storage_quota_exceeded", "storage", "Storage quota reached",
                $"This account stores {stored} of at most {limits.MaxStoredCharsPerUser} characters of messages. Delete or export and delete old conversations to make room.");
        }
        return null;
    }
}
