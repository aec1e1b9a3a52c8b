using Jackcwf.Api.Chat;
using Jackcwf.Api.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Jackcwf.Api.Tests;

/// <summary>
/// The answers' final writes, group-committed (<see cref="FinalWrites"/>): answers that finish while another one's write
/// is in flight are written together once it returns, each with its own values; each learns whether its own row was
/// there; a statement that fails is retried until the answers land.
/// </summary>
public sealed class FinalWritesTests
{
    public static TheoryData<DatabaseProvider> Providers => [DatabaseProvider.Sqlite, DatabaseProvider.PostgreSql];

    [Theory]
    [MemberData(nameof(Providers))]
    public async Task Answers_finishing_while_one_is_written_are_stored_together_each_with_its_own_values_and_a_gone_row_is_not_stored(DatabaseProvider provider)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var setup = await Setup.CreateAsync(provider, answers: 6, ct);
        var writes = new FinalWrites(setup.Scopes, TimeProvider.System, NullLogger.Instance);

        // The first answer's write is held in flight (before its statement) while five more answers and one whose row
        // is gone finish. Each is given another account (a group is written in the order of its accounts, so random ones
        // reorder it): every answer must still get its own values and its own outcome.
        var first = Task.Run(() => writes.StoreAsync(Guid.NewGuid(), setup.Ids[0], Final(0)), ct);
        await setup.Entered.Task.WaitAsync(ct);
        var gone = Guid.NewGuid();
        var others = setup.Ids[1..].Select((id, i) => writes.StoreAsync(Guid.NewGuid(), id, Final(i + 1))).Append(writes.StoreAsync(Guid.NewGuid(), gone, Final(9))).ToArray();
        setup.Release.SetResult();

        Assert.True(await first);
        Assert.Equal(new[] { true, true, true, true, true, false }, await Task.WhenAll(others));
        // The six that finished meanwhile went in one statement, after the first one's.
        Assert.Equal(2, setup.Contexts);
        await setup.AssertStoredAsync(ct);
    }

    [Theory]
    [MemberData(nameof(Providers))]
    public async Task A_database_failure_during_a_group_is_retried_and_every_answer_lands(DatabaseProvider provider)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var setup = await Setup.CreateAsync(provider, answers: 4, ct);
        var log = new Warnings();
        var writes = new FinalWrites(setup.Scopes, TimeProvider.System, log);

        var first = Task.Run(() => writes.StoreAsync(Guid.NewGuid(), setup.Ids[0], Final(0)), ct);
        await setup.Entered.Task.WaitAsync(ct);
        var others = setup.Ids[1..].Select((id, i) => writes.StoreAsync(Guid.NewGuid(), id, Final(i + 1))).ToArray();
        // The table is away while the first answer's statement and the group's run: both fail in the database.
        await setup.ExecuteAsync("ALTER TABLE messages RENAME TO messages_away", ct);
        setup.Release.SetResult();
        await log.FirstAttemptsFailed(setup.Ids.Length).WaitAsync(ct);
        await setup.ExecuteAsync("ALTER TABLE messages_away RENAME TO messages", ct);

        Assert.True(await first);
        Assert.Equal(new[] { true, true, true }, await Task.WhenAll(others));
        await setup.AssertStoredAsync(ct);
    }

    private static (string, object?)[] Final(int i) =>
    [
        (nameof(Message.Content), $"answer {i} — ünïcode"), (nameof(Message.Status), i % 2 == 0 ? MessageStatuses.Complete : MessageStatuses.Failed),
        (nameof(Message.InputTokens), i % 3 == 0 ? null : 10 + i), (nameof(Message.OutputTokens), 20 + i), (nameof(Message.CostUsd), i % 3 == 0 ? null : 0.000125m * (i + 1)),
        (nameof(Message.Model), $"model/{i}"), (nameof(Message.RequestedModel), i == 1 ? "model/asked" : null),
        (nameof(Message.ErrorCode), i % 2 == 0 ? null : "provider_error"), (nameof(Message.ErrorDetail), i % 2 == 0 ? null : $"detail {i}"),
        (nameof(Message.UpdatedAt), At.AddMinutes(1).AddSeconds(i)), (nameof(Message.CompletedAt), At.AddMinutes(1).AddSeconds(i)), (nameof(Message.LeaseExpiresAt), null),
    ];

    private static readonly DateTime At = new(2026, 1, 2, 3, 4, 5, DateTimeKind.Utc);

    /// <summary>A database with streaming answers, and the service scopes the writes take their contexts from: the first context waits for <see cref="Release"/>.</summary>
    private sealed class Setup : IAsyncDisposable
    {
        private readonly SchemaCheckTests.TestDatabaseFor _database;
        private readonly ServiceProvider _services;
        private int _contexts;

        private Setup(SchemaCheckTests.TestDatabaseFor database, Guid[] ids)
        {
            _database = database;
            Ids = ids;
            var services = new ServiceCollection();
            services.AddScoped<AppDbContext>(_ =>
            {
                if (Interlocked.Increment(ref _contexts) == 1)
                {
                    Entered.SetResult();
                    Release.Task.Wait();
                }
                return database.CreateContext();
            });
            _services = services.BuildServiceProvider();
        }

        public Guid[] Ids { get; }

        public IServiceScopeFactory Scopes => _services.GetRequiredService<IServiceScopeFactory>();

        public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Contexts the writes took: one per statement (and per retry).</summary>
        public int Contexts => Volatile.Read(ref _contexts);

        public static async Task<Setup> CreateAsync(DatabaseProvider provider, int answers, CancellationToken ct)
        {
            var database = await SchemaCheckTests.TestDatabaseFor.CreateAsync(provider, ct);
            await using var db = database.CreateContext();
            await DataExtensions.MigrateAsync(db, NullLogger.Instance, ct);
            var user = new AppUser { Id = Guid.NewGuid(), UserName = "finals@example.com", Email = "finals@example.com" };
            var conversation = new Conversation { Id = Guid.NewGuid(), UserId = user.Id, Title = "", Model = "demo/echo", CreatedAt = At, UpdatedAt = At };
            db.Users.Add(user);
            db.Conversations.Add(conversation);
            var messages = Enumerable.Range(0, answers).Select(_ => new Message
            {
                Id = Guid.NewGuid(), ConversationId = conversation.Id, UserId = user.Id, Role = MessageRoles.Assistant,
                Content = "", Status = MessageStatuses.Streaming, CreatedAt = At, UpdatedAt = At, LeaseExpiresAt = At.AddSeconds(30),
            }).ToList();
            db.Messages.AddRange(messages);
            await db.SaveChangesAsync(ct);
            return new Setup(database, messages.Select(m => m.Id).ToArray());
        }

        public async Task ExecuteAsync(string sql, CancellationToken ct)
        {
            await using var db = _database.CreateContext();
            await db.Database.ExecuteSqlRawAsync(sql, ct);
        }

        /// <summary>Every answer holds its own final values.</summary>
        public async Task AssertStoredAsync(CancellationToken ct)
        {
            await using var db = _database.CreateContext();
            var stored = await db.Messages.AsNoTracking().ToDictionaryAsync(m => m.Id, ct);
            Assert.Equal(Ids.Length, stored.Count);
            for (var i = 0; i < Ids.Length; i++)
            {
                var m = stored[Ids[i]];
                var expected = Final(i).ToDictionary(v => v.Item1, v => v.Item2);
                Assert.Equal(
                    (expected[nameof(Message.Content)], expected[nameof(Message.Status)], expected[nameof(Message.InputTokens)], expected[nameof(Message.OutputTokens)],
                        expected[nameof(Message.CostUsd)], expected[nameof(Message.Model)], expected[nameof(Message.RequestedModel)], expected[nameof(Message.ErrorCode)],
                        expected[nameof(Message.ErrorDetail)], expected[nameof(Message.UpdatedAt)], expected[nameof(Message.CompletedAt)], (object?)null),
                    ((object?)m.Content, (object?)m.Status, (object?)m.InputTokens, (object?)m.OutputTokens, (object?)m.CostUsd, (object?)m.Model, (object?)m.RequestedModel,
                        (object?)m.ErrorCode, (object?)m.ErrorDetail, (object?)m.UpdatedAt, (object?)m.CompletedAt, (object?)m.LeaseExpiresAt));
            }
        }

        public async ValueTask DisposeAsync()
        {
            Release.TrySetResult();
            await _services.DisposeAsync();
            await _database.DisposeAsync();
        }
    }

    /// <summary>The final writes' warnings: completes once that many answers' first attempts have failed.</summary>
    private sealed class Warnings : ILogger
    {
        private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _firstAttempts;
        private int _expected = int.MaxValue;

        public Task FirstAttemptsFailed(int count)
        {
            Volatile.Write(ref _expected, count);
            if (Volatile.Read(ref _firstAttempts) >= count)
            {
                _done.TrySetResult();
            }
            return _done.Task;
        }

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (logLevel == LogLevel.Warning && state is IReadOnlyList<KeyValuePair<string, object?>> values
                && values.Any(v => v is { Key: "Attempt", Value: 1 }) && Interlocked.Increment(ref _firstAttempts) >= Volatile.Read(ref _expected))
            {
                _done.TrySetResult();
            }
        }
    }
}
