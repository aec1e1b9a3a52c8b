using Jackcwf.Api.Data;
using Jackcwf.Api.Limits;
using Jackcwf.Api.Telemetry;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.AI;

namespace Jackcwf.Api.Chat;

/// <summary>
/// One message of a conversation: enough to find branches and choose a window. <see cref="Text"/> when it was
/// read with the structure (the newest messages, on PostgreSQL), else null and read once chosen.
/// </summary>
internal sealed record MessageNode(Guid Id, Guid? ParentMessageId, string Role, string Status, DateTime CreatedAt, int Length, string? Text = null);

/// <summary>
/// Chooses what the model sees: the system prompt, then the newest earlier messages of the branch
/// that fit <see cref="LimitsOptions.ContextMaxMessages"/> and <see cref="LimitsOptions.ContextMaxChars"/>,
/// then the new user message. Only the chosen messages' text is read from the database (on PostgreSQL the
/// newest messages' text comes with the structure, so a window without branches needs no read of its own).
/// </summary>
internal static class ContextWindow
{
    // Compiled once: these run on every message (see ChatTurns.FindConversation).
    private static readonly Func<AppDbContext, Guid, IAsyncEnumerable<MessageNode>> Nodes =
        EF.CompileAsyncQuery((AppDbContext db, Guid conversationId) => db.Messages.AsNoTracking()
            .Where(m => m.ConversationId == conversationId)
            .Select(m => new MessageNode(m.Id, m.ParentMessageId, m.Role, m.Status, m.CreatedAt, m.Content.Length)));

    private static readonly Func<AppDbContext, List<Guid>, IAsyncEnumerable<MessageText>> Texts =
        EF.CompileAsyncQuery((AppDbContext db, List<Guid> ids) => db.Messages.AsNoTracking()
            .Where(m => ids.Contains(m.Id))
            .Select(m => new MessageText(m.Id, m.Content)));

    private sealed record MessageText(Guid Id, string Content);

    /// <summary>Every message of the conversation without text, by id (bounded by the per-conversation cap).</summary>
    public static async Task<Dictionary<Guid, MessageNode>> LoadNodesAsync(AppDbContext db, Guid conversationId, CancellationToken ct)
    {
        var nodes = new Dictionary<Guid, MessageNode>();
        await foreach (var n in Nodes(db, conversationId).WithCancellation(ct))
        {
            nodes[n.Id] = n;
        }
        return nodes;
    }

    public static async Task<List<ChatMessage>> BuildAsync(
        AppDbContext db, JackcwfMetrics metrics, LimitsOptions limits, string? systemPrompt, IReadOnlyDictionary<Guid, MessageNode> nodes, Message userMessage,
        CancellationToken ct)
    {
        var chosen = new List<MessageNode>();
        var chars = 0L;
        var cursor = userMessage.ParentMessageId;
        var steps = 0;
        while (cursor is { } c && nodes.TryGetValue(c, out var node) && steps++ < nodes.Count && chosen.Count < limits.ContextMaxMessages)
        {
            if (node.Role == MessageRoles.User || (node.Length > 0 && node.Status != MessageStatuses.Failed))
            {
                if (chars + node.Length > limits.ContextMaxChars)
                {
                    break;
                }
                chars += node.Length;
                chosen.Add(node);
            }
            cursor = node.ParentMessageId;
        }
        chosen.Reverse();
        // A window cut inside the branch starts with the user's turn, as every provider expects.
        while (chosen.Count > 0 && chosen[0].Role != MessageRoles.User)
        {
            chosen.RemoveAt(0);
        }
        // Only the text not read with the structure.
        var missing = chosen.Where(n => n.Text is null).Select(n => n.Id).ToList();
        var texts = new Dictionary<Guid, string>(missing.Count);
        if (missing.Count > 0 && db.Provider == DatabaseProvider.PostgreSql)
        {
            texts = await TurnReads.TextsAsync(db, metrics, [.. missing], ct);
        }
        else if (missing.Count > 0)
        {
            await foreach (var t in Texts(db, missing).WithCancellation(ct))
            {
                texts[t.Id] = t.Content;
            }
        }

        var history = new List<ChatMessage>(chosen.Count + 2);
        if (!string.IsNullOrWhiteSpace(systemPrompt))
        {
            history.Add(new ChatMessage(ChatRole.System, systemPrompt));
        }
        foreach (var n in chosen)
        {
            history.Add(new ChatMessage(n.Role == MessageRoles.User ? ChatRole.User : ChatRole.Assistant, n.Text ?? texts.GetValueOrDefault(n.Id, "")));
        }
        history.Add(new ChatMessage(ChatRole.User, userMessage.Content));
        return history;
    }
}
