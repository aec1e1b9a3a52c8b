using Npgsql;

namespace Jackcwf.HaTests;

/// <summary>A stored message, as the database has it.</summary>
public sealed record StoredMessage(Guid Id, Guid ConversationId, Guid? ParentId, string Role, string Content, string Status, string? Owner, DateTime? CompletedAt);

/// <summary>Compares what clients were told with what the database holds: nothing lost, nothing twice.</summary>
public static class Ledger
{
    public static async Task<List<StoredMessage>> LoadAsync(IHaTarget cluster, IEnumerable<Guid> conversations)
    {
        await using var connection = await cluster.OpenDatabaseAsync();
        await using var command = new NpgsqlCommand(
            """SELECT "Id", "ConversationId", "ParentMessageId", "Role", "Content", "Status", "OwnerInstance", "CompletedAt" FROM messages WHERE "ConversationId" = ANY(@ids)""",
            connection);
        command.Parameters.AddWithValue("ids", conversations.Distinct().ToArray());
        var list = new List<StoredMessage>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            list.Add(new(reader.GetGuid(0), reader.GetGuid(1), reader.IsDBNull(2) ? null : reader.GetGuid(2), reader.GetString(3),
                reader.GetString(4), reader.GetString(5), reader.IsDBNull(6) ? null : reader.GetString(6), reader.IsDBNull(7) ? null : reader.GetDateTime(7)));
        }
        return list;
    }


    /// <summary>
    /// Problems found: a chat whose message is missing or stored twice, an answer other than the echo
    /// of its message, an answer the client saw differently from the database, anything still streaming.
    /// Interrupted answers are accepted when <paramref name="allowInterrupted"/>; their text must then be
    /// a prefix of the full answer.
    /// </summary>
    public static async Task<List<string>> CheckAsync(IHaTarget cluster, IReadOnlyCollection<ChatOutcome> chats, bool allowInterrupted)
    {
        var stored = await LoadAsync(cluster, chats.Select(c => c.ConversationId));
        var problems = new List<string>();
        foreach (var chat in chats)
        {
            var users = stored.Where(m => m.Role == "user" && m.Content == chat.Sent).ToList();
            if (users.Count > 1)
            {
                problems.Add($"{chat.Key}: user message stored {users.Count} times");
                continue;
            }
            if (users.Count == 0)
            {
                if (chat.Acknowledged)
                {
                    problems.Add($"{chat.Key}: acknowledged (assistant {chat.AssistantId}) but the user message is not in the database");
                }
                continue;
            }
            var answers = stored.Where(m => m.Role == "assistant" && m.ParentId == users[0].Id).ToList();
            if (answers.Count != 1)
            {
                problems.Add($"{chat.Key}: {answers.Count} assistant messages for one user message");
                continue;
            }
            var answer = answers[0];
            if (chat.AssistantId is { } seen && seen != answer.Id)
            {
                problems.Add($"{chat.Key}: the client followed {seen}, the database answered with {answer.Id}");
            }
            switch (answer.Status)
            {
                case "complete":
                    if (answer.Content != chat.Sent)
                    {
                        problems.Add($"{chat.Key}: stored answer \"{answer.Content}\" is not the echo \"{chat.Sent}\"");
                    }
                    if (chat.FinalType == "done" && chat.ReceivedText != answer.Content)
                    {
                        problems.Add($"{chat.Key}: client text \"{chat.ReceivedText}\" differs from the stored \"{answer.Content}\"");
                    }
                    break;
                case "interrupted" when allowInterrupted:
                    if (!chat.Sent.StartsWith(answer.Content, StringComparison.Ordinal))
                    {
                        problems.Add($"{chat.Key}: interrupted text \"{answer.Content}\" is not a prefix of \"{chat.Sent}\"");
                    }
                    break;
                default:
                    problems.Add($"{chat.Key}: answer {answer.Id} is {answer.Status}");
                    break;
            }
        }
        var streaming = stored.Count(m => m.Status == "streaming");
        if (streaming > 0)
        {
            problems.Add($"{streaming} message(s) still streaming");
        }
        return problems;
    }
}
