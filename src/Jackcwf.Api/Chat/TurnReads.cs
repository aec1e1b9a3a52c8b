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
/// A turn's reads on PostgreSQL as plain Npgsql commands, without EF Core's query pipeline around them:
/// the conversation (with the account's stored characters and the attached files) and the branch the turn needs
/// (<see cref="BranchSql"/>: the message count and the newest messages, its cost bounded by the context window,
/// not by the conversation's length) in one round trip of one batch; a window reaching further back, or the rest
/// of its text, in another (<see cref="WalkSql"/>, <see cref="TextsSql"/>). Prepared by Npgsql like every
/// repeated statement. SQLite, and any turn that may replay an Idempotency-Key, read through EF Core (every
/// message of the conversation, without text).
/// </summary>
internal static class TurnReads
{
    private const string ConversationSql = """
        SELECT c."Id", c."UserId", c."Title", c."Model", c."SystemPrompt", c."CreatedAt", c."UpdatedAt", c."Pinned", c."Archived", c."FolderId",
          (SELECT s."StoredChars" FROM user_storage AS s WHERE s."UserId" = $2 LIMIT 1)
        FROM conversations AS c WHERE c."Id" = $1 AND c."UserId" = $2
        """;

    private const string FilesSql = """SELECT a."FileId" FROM conversation_files AS a WHERE a."ConversationId" = $1 ORDER BY a."CreatedAt" """;

    // The branch, its cost bounded by the context window, not by the conversation: the newest twice
    // ContextMaxMessages messages and one more ($4), by the (ConversationId, CreatedAt) index, the newest with their
    // text (as many as a context window can hold at most, by count and by characters, newest first: the window of
    // a conversation without branches is among them); first the conversation's message count, for the
    // per-conversation cap: the rows read when they are all of them, else an index-only count of the conversation.
    // A turn whose window reaches past those messages (a branch off an older message, a parent older than them)
    // walks the rest (WalkSql), in a second round trip.
    private const string BranchSql = """
        WITH r AS MATERIALIZED (
          SELECT m."Id", m."ParentMessageId", m."Role", m."Status", m."CreatedAt", m."Content"
          FROM messages AS m WHERE m."ConversationId" = $1 ORDER BY m."CreatedAt" DESC LIMIT $4 + 1)
        SELECT (CASE WHEN (SELECT count(*) FROM r) <= $4 THEN (SELECT count(*) FROM r)
            ELSE (SELECT count(*) FROM messages AS m WHERE m."ConversationId" = $1) END)::int,
          NULL::uuid, NULL::uuid, NULL::text, NULL::text, NULL::timestamptz, NULL::int, NULL::text
        UNION ALL
        SELECT NULL, r."Id", r."ParentMessageId", r."Role", r."Status", r."CreatedAt", length(r."Content")::int,
          CASE WHEN row_number() OVER newest <= $2 AND sum(length(r."Content")) OVER newest <= $3 THEN r."Content" END
        FROM r WINDOW newest AS (ORDER BY r."CreatedAt" DESC, r."Id")
        """;

    // A branch walked from a message ($4) up the ParentMessageId chain, one primary key lookup a step, counted as
    // ContextWindow.BuildAsync counts (from $6 messages and $7 characters already chosen): a step that counts (a
    // user message, or an answer that neither failed nor is empty) adds its length; the walk stops after
    // ContextMaxMessages of them, at the first that does not fit ContextMaxChars, at the top of the branch, or after
    // $8 steps (the conversation's messages). The first message does not count when it is the user message a
    // regeneration answers again ($5): it is not part of its own window. A message carries its text when it is in
    // the window. ContextWindow.BuildAsync still chooses: a walk that stopped short would cost one more read, not a
    // different window. A message not of this conversation is not found. The conversation tests are written IS NOT
    // DISTINCT FROM, which no index serves, so that the generic plan (estimating one message per conversation)
    // looks each step up by primary key, not by scanning the conversation's index.
    private const string WalkSql = """
        WITH RECURSIVE walk AS (
          SELECT m."Id", m."ParentMessageId", m."Role", m."Status", m."CreatedAt", length(m."Content") AS len, m."Content",
            NOT ($5 AND m."Role" = 'user') AND (m."Role" = 'user' OR (length(m."Content") > 0 AND m."Status" <> 'failed')) AS counts,
            1 AS depth, $6::int AS chosen, $7::bigint AS chars
          FROM messages AS m WHERE m."Id" = $4 AND m."ConversationId" IS NOT DISTINCT FROM $1
          UNION ALL
          SELECT m."Id", m."ParentMessageId", m."Role", m."Status", m."CreatedAt", length(m."Content"), m."Content",
            m."Role" = 'user' OR (length(m."Content") > 0 AND m."Status" <> 'failed'),
            w.depth + 1, w.chosen + w.counts::int, w.chars + CASE WHEN w.counts THEN w.len ELSE 0 END
          FROM walk AS w JOIN messages AS m ON m."Id" = w."ParentMessageId" AND m."ConversationId" IS NOT DISTINCT FROM $1
          WHERE NOT (w.counts AND w.chars + w.len > $3) AND w.chosen + w.counts::int < $2 AND w.depth < $8
        )
        SELECT w."Id", w."ParentMessageId", w."Role", w."Status", w."CreatedAt", w.len,
          CASE WHEN w.counts AND w.chars + w.len <= $3 THEN w."Content" END
        FROM walk AS w
        """;

    private const string TextsSql = """SELECT m."Id", m."Content" FROM messages AS m WHERE m."Id" = ANY ($1)""";

    /// <summary>
    /// The conversation if it is the user's (null otherwise), and its branch as far as one read bounded by the context
    /// window goes (<see cref="Branch"/>: the message count and the newest messages; <see cref="WalkAsync"/> reads
    /// further back). The files and messages of a conversation that is not the user's are read and dropped: the
    /// caller answers 404.
    /// </summary>
    public static async Task<(TurnStart? Found, Branch Branch)> StartAsync(
        AppDbContext db, JackcwfMetrics metrics, Limits.LimitsOptions limits, Guid id, Guid userId, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        var newestRead = 2L * limits.ContextMaxMessages;
        await using var batch = new NpgsqlBatch(Connection(db), Transaction(db))
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand(ConversationSql) { Parameters = { new NpgsqlParameter<Guid> { TypedValue = id }, new NpgsqlParameter<Guid> { TypedValue = userId } } },
                new NpgsqlBatchCommand(FilesSql) { Parameters = { new NpgsqlParameter<Guid> { TypedValue = id } } },
                new NpgsqlBatchCommand(BranchSql)
                {
                    Parameters =
                    {
                        new NpgsqlParameter<Guid> { TypedValue = id }, new NpgsqlParameter<long> { TypedValue = limits.ContextMaxMessages },
                        new NpgsqlParameter<long> { TypedValue = limits.ContextMaxChars }, new NpgsqlParameter<long> { TypedValue = newestRead },
                    },
                },
            },
        };
        TurnStart? found = null;
        var nodes = new Dictionary<Guid, MessageNode>();
        var count = 0;
        MessageNode? newest = null;
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
                if (reader.IsDBNull(1))
                {
                    count = reader.GetInt32(0);
                    continue;
                }
                var node = Node(reader, 1);
                nodes[node.Id] = node;
                // Newest first: the first of the newest instant (the lowest id), as the whole conversation was read before.
                if (newest is null || node.CreatedAt > newest.CreatedAt)
                {
                    newest = node;
                }
            }
            if (conversation is not null)
            {
                found = new TurnStart(conversation, stored, files);
            }
        }
        metrics.DbCommand("postgresql", "select", Stopwatch.GetElapsedTime(started).TotalSeconds);
        return (found, found is null ? new Branch(0, null, [], Complete: true) : new Branch(count, newest?.Id, nodes, Complete: nodes.Count == count));
    }

    /// <summary>
    /// The branch from <paramref name="from"/> up its ancestors as far as its window reaches, counted from what was
    /// chosen already (<paramref name="chosen"/> messages, <paramref name="chars"/> characters), added to
    /// <paramref name="branch"/>'s messages. <paramref name="regenerating"/>: <paramref name="from"/> is a parent
    /// that, being a user message, is answered again and so not part of the window.
    /// </summary>
    public static async Task WalkAsync(
        AppDbContext db, JackcwfMetrics metrics, Limits.LimitsOptions limits, Guid conversationId, Branch branch, Guid from, bool regenerating,
        int chosen, long chars, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        await using (var command = new NpgsqlCommand(WalkSql, Connection(db), Transaction(db))
        {
            Parameters =
            {
                new NpgsqlParameter<Guid> { TypedValue = conversationId }, new NpgsqlParameter<long> { TypedValue = limits.ContextMaxMessages },
                new NpgsqlParameter<long> { TypedValue = limits.ContextMaxChars }, new NpgsqlParameter<Guid> { TypedValue = from },
                new NpgsqlParameter<bool> { TypedValue = regenerating }, new NpgsqlParameter<int> { TypedValue = chosen },
                new NpgsqlParameter<long> { TypedValue = chars }, new NpgsqlParameter<int> { TypedValue = branch.Count + 1 },
            },
        })
        await using (var reader = await command.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct))
            {
                var node = Node(reader, 0);
                // A message read already keeps its text, if it has it.
                if (!branch.Nodes.TryGetValue(node.Id, out var known) || known.Text is null)
                {
                    branch.Nodes[node.Id] = node;
                }
            }
        }
        metrics.DbCommand("postgresql", "select", Stopwatch.GetElapsedTime(started).TotalSeconds);
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

    /// <summary>A message node from the row's columns from <paramref name="i"/> on: id, parent, role, status, created, length, text.</summary>
    private static MessageNode Node(NpgsqlDataReader reader, int i) =>
        new(reader.GetGuid(i), reader.IsDBNull(i + 1) ? null : reader.GetGuid(i + 1), reader.GetString(i + 2), reader.GetString(i + 3),
            Utc(reader.GetDateTime(i + 4)), reader.GetInt32(i + 5), reader.IsDBNull(i + 6) ? null : reader.GetString(i + 6));

    private static NpgsqlConnection Connection(AppDbContext db) => (NpgsqlConnection)db.Database.GetDbConnection();

    private static NpgsqlTransaction? Transaction(AppDbContext db) => (NpgsqlTransaction?)db.Database.CurrentTransaction?.GetDbTransaction();

    // As the model's converter reads every DateTime (UtcConverter).
    private static DateTime Utc(DateTime value) => DateTime.SpecifyKind(value, DateTimeKind.Utc);
}
