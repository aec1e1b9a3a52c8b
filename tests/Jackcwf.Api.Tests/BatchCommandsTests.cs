using Jackcwf.Api.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging.Abstractions;

namespace Jackcwf.Api.Tests;

/// <summary>
/// The running answers' checkpoint statement (<see cref="BatchCommands.UpdateAsync{T}"/>): each row gets its
/// own text, the shared columns their one value, only rows passing the filter change; on PostgreSQL the rows
/// travel as arrays, so batches of any size run one statement text.
/// </summary>
public sealed class BatchCommandsTests
{
    public static TheoryData<DatabaseProvider> Providers => [DatabaseProvider.Sqlite, DatabaseProvider.PostgreSql];

    [Theory]
    [MemberData(nameof(Providers))]
    public async Task Checkpoints_of_any_batch_size_set_each_rows_text_and_skip_rows_no_longer_streaming(DatabaseProvider provider)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var database = await SchemaCheckTests.TestDatabaseFor.CreateAsync(provider, ct);
        // Statements prepared from their second run on, as the service's connections do (DataExtensions).
        await using var db = database.CreateContext(";Max Auto Prepare=20;Auto Prepare Min Usages=2");
        await DataExtensions.MigrateAsync(db, NullLogger.Instance, ct);
        // Messages alone, without their conversation and account: foreign keys (and the storage triggers) off
        // on this one connection, which the context keeps open for the whole test.
        await db.Database.OpenConnectionAsync(ct);
        await db.Database.ExecuteSqlRawAsync(provider == DatabaseProvider.PostgreSql
            ? "SET session_replication_role = replica" : "PRAGMA foreign_keys = OFF", ct);

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
        await db.Database.CloseConnectionAsync();
    }
}
