using System.Diagnostics;
using Jackcwf.Api.Data;
using Jackcwf.Api.Telemetry;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Npgsql;

namespace Jackcwf.Api.Chat;

/// <summary>What a turn reads first: the conversation (untracked), the account's stored characters, the attached files.</summary>
internal sealed record TurnStart(Conversation Conversation, long? Stored, List<Guid> Files);

/// <summary>
/// A turn's reads on PostgreSQL as plain Npgsql commands, the same statements EF Core's compiled queries
/// send (<see cref="ChatTurns"/>, <see cref="ContextWindow"/>), without EF Core's query pipeline around them:
/// the conversation (with the account's stored characters and the attached files), the branch structure and
/// the newest messages' text in one round trip of one batch; the rest of the window's text, if any, in another. Prepared by Npgsql like every repeated
/// statement. SQLite, and any turn that may replay an Idempotency-Key, read through EF Core.
/// </summary>
internal static class TurnReads
{
    private const string ConversationSql = """
        SELECT c."Id", c."UserId", c."Title", c."Model", c."SystemPrompt", c."CreatedAt", c."UpdatedAt", c."Pinned", c."Archived", c."FolderId",
          (SELECT s."StoredChars" FROM user_storage AS s WHERE s."UserId" = $2 LIMIT 1)
        FROM conversations AS c WHERE c."Id" = $1 AND c."UserId" = $2
        """;

    private const string FilesSql = """SELECT a."FileId" FROM conversation_files AS a WHERE a."ConversationId" = $1 ORDER BY a."CreatedAt" """;

    // The newest messages' text comes along, as many as a context window can hold at most (by count and by
    // characters, newest first): the window of a conversation without branches is among them, so it needs no
    // read of its own. A window that reaches further back on a branch reads the rest (TextsAsync).
    private const string NodesSql = """
        SELECT m."Id", m."ParentMessageId", m."Role", m."Status", m."CreatedAt", length(m."Content")::int,
          CASE WHEN row_number() OVER newest <= $2 AND sum(length(m."Content")) OVER newest <= $3 THEN m."Content" END
        FROM messages AS m WHERE m."ConversationId" = $1
        WINDOW newest AS (ORDER BY m."CreatedAt" DESC, m."Id")
        """;

    private const string TextsSql = """SELECT m."Id", m."Content" FROM messages AS m WHERE m."Id" = ANY ($1)""";

    /// <summary>
    /// The conversation if it is the user's (null otherwise), and every message of it by id, the newest with their
    /// text (<see cref="MessageNode.Text"/>) up to <paramref name="limits"/>' window. The files and messages of a
    /// conversation that is not the user's are read and dropped: the caller answers 404.
    /// </summary>
    public static async Task<(TurnStart? Found, Dictionary<Guid, MessageNode> Nodes)> StartAsync(
        AppDbContext db, JackcwfMetrics metrics, Limits.LimitsOptions limits, Guid id, Guid userId, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        await using var batch = new NpgsqlBatch(Connection(db), Transaction(db))
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand(ConversationSql) { Parameters = { new NpgsqlParameter<Guid> { TypedValue = id }, new NpgsqlParameter<Guid> { TypedValue = userId } } },
                new NpgsqlBatchCommand(FilesSql) { Parameters = { new NpgsqlParameter<Guid> { TypedValue = id } } },
                new NpgsqlBatchCommand(NodesSql)
                {
                    Parameters =
                    {
                        new NpgsqlParameter<Guid> { TypedValue = id }, new NpgsqlParameter<long> { TypedValue = limits.ContextMaxMessages },
                        new NpgsqlParameter<long> { TypedValue = limits.ContextMaxChars },
                    },
                },
            },
        };
        TurnStart? found = null;
        var nodes = new Dictionary<Guid, MessageNode>();
        await using (var reader = await batch.ExecuteReaderAsync(ct))
        {
            Conversation? conversation = null;
            long? stored = null;
            if (await reader.ReadAsync(ct))
            {
                conversation = new Conversation
                {
                    Id = reader.GetGuid(0), UserId = reader.GetGuid(1), Title = reader.GetString(2), Model = reader.GetString(3),
                    SystemPrompt = reader.IsDBNull(4) ? null : reader.GetString(4), CreatedAt = Utc(reader.GetDateTime(5)), UpdatedAt = Utc(reader.GetDateTime(6)),
                    Pinned = reader.GetBoolean(7), Archived = reader.GetBoolean(8), FolderId = reader.IsDBNull(9) ? null : reader.GetGuid(9),
                };
                stored = reader.IsDBNull(10) ? null : reader.GetInt64(10);
            }
            await reader.NextResultAsync(ct);
            var files = new List<Guid>();
            while (await reader.ReadAsync(ct))
            {
                files.Add(reader.GetGuid(0));
            }
            await reader.NextResultAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                var node = new MessageNode(reader.GetGuid(0), reader.IsDBNull(1) ? null : reader.GetGuid(1), reader.GetString(2), reader.GetString(3),
                    Utc(reader.GetDateTime(4)), reader.GetInt32(5), reader.IsDBNull(6) ? null : reader.GetString(6));
                nodes[node.Id] = node;
            }
            if (conversation is not null)
            {
                found = new TurnStart(conversation, stored, files);
            }
        }
        metrics.DbCommand("postgresql", "select", Stopwatch.GetElapsedTime(started).TotalSeconds);
        return (found, found is null ? [] : nodes);
    }

    /// <summary>The text of the messages named, by id.</summary>
    public static async Task<Dictionary<Guid, string>> TextsAsync(AppDbContext db, JackcwfMetrics metrics, Guid[] ids, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        var texts = new Dictionary<Guid, string>(ids.Length);
        await using (var command = new NpgsqlCommand(TextsSql, Connection(db), Transaction(db)) { Parameters = { new NpgsqlParameter<Guid[]> { TypedValue = ids } } })
        await using (var reader = await command.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct))
            {
                texts[reader.GetGuid(0)] = reader.GetString(1);
            }
        }
        metrics.DbCommand("postgresql", "select", Stopwatch.GetElapsedTime(started).TotalSeconds);
        return texts;
    }

    private static NpgsqlConnection Connection(AppDbContext db) => (NpgsqlConnection)db.Database.GetDbConnection();

    private static NpgsqlTransaction? Transaction(AppDbContext db) => (NpgsqlTransaction?)db.Database.CurrentTransaction?.GetDbTransaction();

    // As the model's converter reads every DateTime (UtcConverter).
    private static DateTime Utc(DateTime value) => DateTime.SpecifyKind(value, DateTimeKind.Utc);
}
