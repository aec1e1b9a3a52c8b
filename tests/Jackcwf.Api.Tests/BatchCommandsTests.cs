using Jackcwf.Api.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging.Abstractions;

namespace Jackcwf.Api.Tests;

/// <summary>
/// The running answers' checkpoint statement (<see cref="BatchCommands.UpdateAsync{T}"/>): each row gets its
/// own text, the shared columns their one value, only rows passing the filter change; on PostgreSQL the rows
/// travel as arrays, so batches of any size run one statement text. A turn's write and an answer's final write
/// (<see cref="BatchCommands.UpdateRowThenInsertAsync{TUpdated, TInserted}"/>, <see cref="BatchCommands.UpdateRowAsync{T}"/>)
/// store every column as <c>SaveChanges</c> would, run after run of the same shape. The final writes of several answers
/// in one statement (<see cref="BatchCommands.UpdateRowsAsync{T, TKey}"/>) set each row's own values and say which rows were there.
/// </summary>
public sealed class BatchCommandsTests
{
    public static TheoryData<DatabaseProvider> Providers => [DatabaseProvider.Sqlite, DatabaseProvider.PostgreSql];

    [Theory]
    [MemberData(nameof(Providers))]
    public async Task Checkpoints_of_any_batch_size_set_each_rows_text_and_skip_rows_no_longer_streaming(DatabaseProvider provider)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var detached = await Detached.CreateAsync(provider, ct);
        var db = detached.Db;

        var at = new DateTime(2026, 1, 2, 3, 4, 5, DateTimeKind.Utc);
        var messages = Enumerable.Range(0, 7).Select(i => new Message
        {
            Id = Guid.NewGuid(), ConversationId = Guid.NewGuid(), UserId = Guid.NewGuid(), Role = MessageRoles.Assistant,
            Content = "", Status = i == 6 ? MessageStatuses.Complete : MessageStatuses.Streaming, CreatedAt = at, UpdatedAt = at,
        }).ToList();
        db.Messages.AddRange(messages);
        await db.SaveChangesAsync(ct);
        db.ChangeTracker.Clear();

        var later = at.AddMinutes(1);
        var lease = later.AddSeconds(30);
        // Batches of 1, 2 and 4 rows (the last one holding the answer that is no longer streaming), twice each:
        // the second time, PostgreSQL runs the statement prepared.
        foreach (var round in new[] { "first", "second" })
        {
            foreach (var batch in new[] { messages[..1], messages[1..3], messages[3..7] })
            {
                await BatchCommands.UpdateAsync<Message>(db, batch.Select(m => ((object)m.Id, (object?)$"{round} text of {m.Id} — ünïcode")).ToArray(),
                    nameof(Message.Content), [(nameof(Message.UpdatedAt), later), (nameof(Message.LeaseExpiresAt), lease)],
                    nameof(Message.Status), MessageStatuses.Streaming, ct);
            }
            var stored = await db.Messages.AsNoTracking().ToDictionaryAsync(m => m.Id, ct);
            foreach (var m in messages[..6])
            {
                Assert.Equal($"{round} text of {m.Id} — ünïcode", stored[m.Id].Content);
                Assert.Equal(later, stored[m.Id].UpdatedAt);
                Assert.Equal(lease, stored[m.Id].LeaseExpiresAt);
            }
            Assert.Equal("", stored[messages[6].Id].Content);
            Assert.Equal(at, stored[messages[6].Id].UpdatedAt);
            Assert.Null(stored[messages[6].Id].LeaseExpiresAt);
        }

        if (provider == DatabaseProvider.PostgreSql)
        {
            // One statement text for every batch size, prepared once on this connection.
            var texts = await db.Database.SqlQueryRaw<string>(
                "SELECT statement AS \"Value\" FROM pg_prepared_statements WHERE statement LIKE 'UPDATE %unnest%'").ToListAsync(ct);
            Assert.Single(texts);
        }
    }

    [Theory]
    [MemberData(nameof(Providers))]
    public async Task A_turns_write_and_an_answers_final_write_store_every_column_run_after_run(DatabaseProvider provider)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var detached = await Detached.CreateAsync(provider, ct);
        var db = detached.Db;
        var at = new DateTime(2026, 1, 2, 3, 4, 5, DateTimeKind.Utc);
        var conversation = new Conversation { Id = Guid.NewGuid(), UserId = Guid.NewGuid(), Title = "", Model = "demo/echo", CreatedAt = at, UpdatedAt = at };
        db.Conversations.Add(conversation);
        await db.SaveChangesAsync(ct);
        db.ChangeTracker.Clear();

        // Three turns of the same shape (the second and third run prepared on PostgreSQL), the first with its WAL unflushed.
        var written = new List<Message>();
        for (var turn = 0; turn < 3; turn++)
        {
            var now = at.AddMinutes(turn + 1);
            var user = new Message
            {
                Id = Guid.NewGuid(), ConversationId = conversation.Id, UserId = conversation.UserId, ParentMessageId = written.LastOrDefault()?.Id,
                Role = MessageRoles.User, Content = $"question {turn} — ünïcode", Status = MessageStatuses.Complete, CreatedAt = now, UpdatedAt = now, CompletedAt = now,
            };
            var assistant = new Message
            {
                Id = Guid.NewGuid(), ConversationId = conversation.Id, UserId = conversation.UserId, ParentMessageId = user.Id, Role = MessageRoles.Assistant,
                Content = "", Status = MessageStatuses.Streaming, Model = "demo/echo", CreatedAt = now, UpdatedAt = now, OwnerInstance = "here",
                LeaseExpiresAt = now.AddSeconds(30), Sources = turn == 1 ? "[]" : null,
            };
            await BatchCommands.UpdateRowThenInsertAsync<Conversation, Message>(db, conversation.Id,
                [(nameof(Conversation.Title), $"title {turn}"), (nameof(Conversation.UpdatedAt), now)], [user, assistant], ct,
                unflushed: turn == 0 && provider == DatabaseProvider.PostgreSql);
            written.AddRange([user, assistant]);

            var stored = await db.Conversations.AsNoTracking().SingleAsync(c => c.Id == conversation.Id, ct);
            Assert.Equal((($"title {turn}"), now), (stored.Title, stored.UpdatedAt));
            var rows = await db.Messages.AsNoTracking().Where(m => m.ConversationId == conversation.Id).ToDictionaryAsync(m => m.Id, ct);
            Assert.Equal(written.Count, rows.Count);
            foreach (var m in written)
            {
                Assert.Equivalent(m, rows[m.Id]);
            }

            // The answer's final write: absolute values, nulls among them; a row that is not there changes nothing.
            (string, object?)[] final =
            [
                (nameof(Message.Content), $"answer {turn}"), (nameof(Message.Status), MessageStatuses.Complete), (nameof(Message.InputTokens), 7),
                (nameof(Message.OutputTokens), 3), (nameof(Message.CostUsd), 0.000125m), (nameof(Message.Model), "demo/echo"),
                (nameof(Message.RequestedModel), null), (nameof(Message.ErrorCode), null), (nameof(Message.ErrorDetail), null),
                (nameof(Message.UpdatedAt), now.AddSeconds(1)), (nameof(Message.CompletedAt), now.AddSeconds(1)), (nameof(Message.LeaseExpiresAt), null),
            ];
            Assert.Equal(1, await BatchCommands.UpdateRowAsync<Message>(db, assistant.Id, final, ct));
            Assert.Equal(0, await BatchCommands.UpdateRowAsync<Message>(db, Guid.NewGuid(), final, ct));
            var answer = await db.Messages.AsNoTracking().SingleAsync(m => m.Id == assistant.Id, ct);
            Assert.Equal(($"answer {turn}", MessageStatuses.Complete, 7, 3, 0.000125m, (DateTime?)now.AddSeconds(1), (DateTime?)null),
                (answer.Content, answer.Status, answer.InputTokens, answer.OutputTokens, answer.CostUsd, answer.CompletedAt, answer.LeaseExpiresAt));
            (assistant.Content, assistant.Status, assistant.InputTokens, assistant.OutputTokens, assistant.CostUsd) = (answer.Content, answer.Status, 7, 3, 0.000125m);
            (assistant.UpdatedAt, assistant.CompletedAt, assistant.LeaseExpiresAt) = (now.AddSeconds(1), now.AddSeconds(1), null);
        }

        // A row that is already there fails the write as SaveChanges fails it.
        await Assert.ThrowsAsync<DbUpdateException>(() => BatchCommands.UpdateRowThenInsertAsync<Conversation, Message>(db, conversation.Id,
            [(nameof(Conversation.Title), "again"), (nameof(Conversation.UpdatedAt), at)], [written[0], written[1]], ct));
    }

    [Theory]
    [MemberData(nameof(Providers))]
    public async Task Final_writes_of_many_answers_in_one_statement_set_each_rows_own_values_and_say_which_rows_were_there(DatabaseProvider provider)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var detached = await Detached.CreateAsync(provider, ct);
        var db = detached.Db;
        var at = new DateTime(2026, 1, 2, 3, 4, 5, DateTimeKind.Utc);
        var messages = Enumerable.Range(0, 6).Select(i => new Message
        {
            Id = Guid.NewGuid(), ConversationId = Guid.NewGuid(), UserId = Guid.NewGuid(), Role = MessageRoles.Assistant,
            Content = "", Status = MessageStatuses.Streaming, CreatedAt = at, UpdatedAt = at, LeaseExpiresAt = at.AddSeconds(30),
        }).ToList();
        db.Messages.AddRange(messages);
        await db.SaveChangesAsync(ct);
        db.ChangeTracker.Clear();

        static (string, object?)[] Final(int i, string round, DateTime when) =>
        [
            (nameof(Message.Content), $"{round} answer {i} — ünïcode"), (nameof(Message.Status), i % 2 == 0 ? MessageStatuses.Complete : MessageStatuses.Failed),
            (nameof(Message.InputTokens), i % 3 == 0 ? null : 10 + i), (nameof(Message.OutputTokens), 20 + i), (nameof(Message.CostUsd), i % 3 == 0 ? null : 0.000125m * (i + 1)),
            (nameof(Message.Model), $"model/{i}"), (nameof(Message.RequestedModel), i == 1 ? "model/asked" : null),
            (nameof(Message.ErrorCode), i % 2 == 0 ? null : "provider_error"), (nameof(Message.ErrorDetail), i % 2 == 0 ? null : $"detail {i}"),
            (nameof(Message.UpdatedAt), when.AddSeconds(i)), (nameof(Message.CompletedAt), when.AddSeconds(i)), (nameof(Message.LeaseExpiresAt), null),
        ];

        // Groups of 1, 2 and 3 answers (one of the 3 whose row is gone: SQLite runs it as 4 rows, the last one twice), twice:
        // the second time, PostgreSQL runs them prepared.
        var gone = Guid.NewGuid();
        foreach (var (round, when) in new[] { ("first", at.AddMinutes(1)), ("second", at.AddMinutes(2)) })
        {
            Assert.Equal(new[] { true }, await BatchCommands.UpdateRowsAsync<Message, Guid>(db, [(messages[0].Id, Final(0, round, when))], ct));
            Assert.Equal(new[] { true, true }, await BatchCommands.UpdateRowsAsync<Message, Guid>(db,
                [(messages[1].Id, Final(1, round, when)), (messages[2].Id, Final(2, round, when))], ct));
            Assert.Equal(new[] { true, false, true }, await BatchCommands.UpdateRowsAsync<Message, Guid>(db,
                [(messages[3].Id, Final(3, round, when)), (gone, Final(9, round, when)), (messages[4].Id, Final(4, round, when))], ct));
            Assert.Equal(new[] { true }, await BatchCommands.UpdateRowsAsync<Message, Guid>(db, [(messages[5].Id, Final(5, round, when))], ct));

            var stored = await db.Messages.AsNoTracking().ToDictionaryAsync(m => m.Id, ct);
            Assert.Equal(6, stored.Count);
            for (var i = 0; i < 6; i++)
            {
                var m = stored[messages[i].Id];
                var expected = Final(i, round, when).ToDictionary(v => v.Item1, v => v.Item2);
                Assert.Equal(expected[nameof(Message.Content)], m.Content);
                Assert.Equal(expected[nameof(Message.Status)], m.Status);
                Assert.Equal(expected[nameof(Message.InputTokens)], m.InputTokens);
                Assert.Equal(expected[nameof(Message.OutputTokens)], m.OutputTokens);
                Assert.Equal(expected[nameof(Message.CostUsd)], m.CostUsd);
                Assert.Equal(expected[nameof(Message.Model)], m.Model);
                Assert.Equal(expected[nameof(Message.RequestedModel)], m.RequestedModel);
                Assert.Equal(expected[nameof(Message.ErrorCode)], m.ErrorCode);
                Assert.Equal(expected[nameof(Message.ErrorDetail)], m.ErrorDetail);
                Assert.Equal(expected[nameof(Message.UpdatedAt)], m.UpdatedAt);
                Assert.Equal(expected[nameof(Message.CompletedAt)], m.CompletedAt);
                Assert.Null(m.LeaseExpiresAt);
                Assert.Equal(messages[i].ConversationId, m.ConversationId);
            }
        }

        if (provider == DatabaseProvider.PostgreSql)
        {
            // One statement text for groups of any size, prepared once on this connection.
            var texts = await db.Database.SqlQueryRaw<string>(
                "SELECT statement AS \"Value\" FROM pg_prepared_statements WHERE statement LIKE 'UPDATE %unnest%'").ToListAsync(ct);
            Assert.Single(texts);
        }
    }

    /// <summary>
    /// A migrated database and one context on it, its connection kept open for the whole test with foreign keys (and the
    /// storage triggers) off on it, so rows are written alone, without their conversation and account; statements
    /// prepared from their second run on, as the service's connections do (DataExtensions).
    /// </summary>
    private sealed class Detached : IAsyncDisposable
    {
        private readonly SchemaCheckTests.TestDatabaseFor _database;

        private Detached(SchemaCheckTests.TestDatabaseFor database, AppDbContext db)
        {
            _database = database;
            Db = db;
        }

        public AppDbContext Db { get; }

        public static async Task<Detached> CreateAsync(DatabaseProvider provider, CancellationToken ct)
        {
            var database = await SchemaCheckTests.TestDatabaseFor.CreateAsync(provider, ct);
            var db = database.CreateContext(";Max Auto Prepare=20;Auto Prepare Min Usages=2");
            await DataExtensions.MigrateAsync(db, NullLogger.Instance, ct);
            await db.Database.OpenConnectionAsync(ct);
            await db.Database.ExecuteSqlRawAsync(provider == DatabaseProvider.PostgreSql
                ? "SET session_replication_role = replica" : "PRAGMA foreign_keys = OFF", ct);
            return new Detached(database, db);
        }

        public async ValueTask DisposeAsync()
        {
            await Db.Database.CloseConnectionAsync();
            await Db.DisposeAsync();
            await _database.DisposeAsync();
        }
    }
}
