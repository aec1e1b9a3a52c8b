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
/// What a turn reads of its conversation's messages: <see cref="Count"/>, all of them (the per-conversation cap);
/// <see cref="Newest"/>, the newest one's id (null when there is none); <see cref="Nodes"/>, by id, every message
/// (<see cref="Complete"/>), or on PostgreSQL in a conversation longer than twice the context window the newest
/// ones (<see cref="TurnReads"/>), to which a window reaching further back adds its own (<see cref="TurnReads.WalkAsync"/>).
/// </summary>
internal sealed record Branch(int Count, Guid? Newest, Dictionary<Guid, MessageNode> Nodes, bool Complete);

/// <summary>
/// Chooses what the model sees: the system prompt, then the newest earlier messages of the branch
/// that fit <see cref="LimitsOptions.ContextMaxMessages"/> and <see cref="LimitsOptions.ContextMaxChars"/>,
/// then the new user message. Only the chosen messages' text is read from the database (on PostgreSQL the
/// newest messages' text comes with the structure, and a window walked further back carries its own, so a
/// window needs a read of its own only for older messages among those read first, <see cref="TurnReads"/>).
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
    public static async Task<Branch> LoadBranchAsync(AppDbContext db, Guid conversationId, CancellationToken ct)
    {
        var nodes = new Dictionary<Guid, MessageNode>();
        await foreach (var n in Nodes(db, conversationId).WithCancellation(ct))
        {
            nodes[n.Id] = n;
        }
        return new Branch(nodes.Count, nodes.Count == 0 ? null : nodes.Values.MaxBy(m => m.CreatedAt)!.Id, nodes, Complete: true);
    }

    public static async Task<List<ChatMessage>> BuildAsync(
        AppDbContext db, JackcwfMetrics metrics, LimitsOptions limits, string? systemPrompt, Branch branch, Message userMessage,
        CancellationToken ct)
    {
        // TurnReads' walk (WalkSql) keeps this count, step for step: a change here is a change there.
        var nodes = branch.Nodes;
        var chosen = new List<MessageNode>();
        var chars = 0L;
        var cursor = userMessage.ParentMessageId;
        var steps = 0;
        while (cursor is { } c && chosen.Count < limits.ContextMaxMessages)
        {
            if (!nodes.ContainsKey(c) && !branch.Complete)
            {
                // The window goes on past the newest messages read (PostgreSQL's, TurnReads): the rest of it in one more read.
                await TurnReads.WalkAsync(db, metrics, limits, userMessage.ConversationId, branch, c, regenerating: false, chosen.Count, chars, ct);
            }
            if (!nodes.TryGetValue(c, out var node) || steps++ >= branch.Count)
            {
                break;
            }
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
