using Jackcwf.Api.Configuration;
using Jackcwf.Api.Data;
using Jackcwf.Api.Telemetry;
using Jackcwf.Api.Web;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace Jackcwf.Api.Conversations;

/// <summary>
/// The storage caps checked before a turn stores anything: messages per conversation and characters
/// per account. Both are reads of bounded size (an index count of one conversation, one counter row).
/// Concurrent turns of one account can pass together, so a cap can be exceeded by at most the
/// account's concurrent generations (and the answers they write).
/// </summary>
public static class ConversationQuota
{
    public static async Task<ProblemHttpResult?> CheckAsync(
        AppDbContext db, LimitsOptions limits, JackcwfMetrics metrics, Guid userId, Guid conversationId, int newMessages, int newChars, CancellationToken ct)
    {
        var count = await db.Messages.CountAsync(m => m.ConversationId == conversationId, ct);
        if (count + newMessages > limits.MaxMessagesPerConversation)
        {
            metrics.LimitRefused("conversation_messages");
            return Problems.LimitReached("conversation_full", "conversation_messages", "This conversation is full",
                $"A conversation holds at most {limits.MaxMessagesPerConversation} messages (this one has {count}). Start a new conversation to go on.");
        }
        var stored = await db.UserStorage.Where(s => s.UserId == userId).Select(s => (long?)s.StoredChars).FirstOrDefaultAsync(ct) ?? 0;
        if (stored + newChars > limits.MaxStoredCharsPerUser || stored >= limits.MaxStoredCharsPerUser)
        {
            metrics.LimitRefused("storage");
            return Problems.LimitReached("storage_quota_exceeded", "storage", "Storage quota reached",
                $"This account stores {stored} of at most {limits.MaxStoredCharsPerUser} characters of messages. Delete or export and delete old conversations to make room.");
        }
        return null;
    }
}
