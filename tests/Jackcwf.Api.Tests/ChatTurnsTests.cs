using Jackcwf.Api.Accounts;
using Jackcwf.Api.Ai;
using Jackcwf.Api.Ai.Pipeline;
using Jackcwf.Api.Chat;
using Jackcwf.Api.Data;
using Jackcwf.Api.Files;
using Jackcwf.Api.Limits;
using Jackcwf.Api.Telemetry;
using Microsoft.AspNetCore.Http;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Jackcwf.Api.Tests;

/// <summary>
/// <see cref="ChatTurns"/> without a host: the services as the app registers them over a SQLite file,
/// a fake clock, the demo model. A turn takes its limits before it stores anything.
/// </summary>
public sealed class ChatTurnsTests : IAsyncLifetime
{
    private static readonly CancellationToken Ct = TestContext.Current.CancellationToken;
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2031, 2, 3, 4, 5, 6, TimeSpan.Zero));
    private readonly string _dbPath = Path.Combine(Path.GetTempPath(), $"jackcwf-turns-{Guid.NewGuid():N}.db");
    private readonly Guid _userId = Guid.NewGuid();
    private readonly Guid _conversationId = Guid.NewGuid();
    private readonly List<string> _storeCalls = [];
    private ServiceProvider _services = null!;

    public async ValueTask InitializeAsync()
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            [DatabaseOptions.UrlKey] = "sqlite:///" + _dbPath,
            ["Limits:MaxConcurrentGenerationsPerUser"] = "1",
            ["Limits:MaxConcurrentStreamsPerUser"] = "1",
        });
        builder.Services.AddSingleton<TimeProvider>(_time);
        // The limits' store as the app registers it, with every call recorded (AddLimits keeps this one).
        builder.Services.AddSingleton<InProcessLimitStore>();
        builder.Services.AddSingleton<ILimitStore>(sp => new RecordingLimitStore(sp.GetRequiredService<InProcessLimitStore>(), _storeCalls));
        builder.Services.AddSingleton<Jackcwf.ServiceDefaults.DrainState>();
        builder.AddTelemetry();
        builder.AddData();
        builder.AddAccounts();
        builder.AddAi();
        builder.AddLimits();
        builder.AddChat();
        builder.AddFiles();
        _services = builder.Services.BuildServiceProvider();
        await using var scope = _services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        await DataExtensions.MigrateAsync(db, NullLogger.Instance, Ct);
        db.Users.Add(new AppUser { Id = _userId, UserName = "turns@example.com", Email = "turns@example.com" });
        var at = _time.UtcNowForStorage();
        db.Conversations.Add(new Conversation { Id = _conversationId, UserId = _userId, Title = "", Model = "demo/echo", CreatedAt = at, UpdatedAt = at });
        await db.SaveChangesAsync(Ct);
    }

    public async ValueTask DisposeAsync()
    {
        await _services.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        foreach (var file in Directory.GetFiles(Path.GetTempPath(), Path.GetFileName(_dbPath) + "*"))
        {
            File.Delete(file);
        }
    }

    private TurnRequest Send(string content, string key = "", bool streaming = false) =>
        new(_userId, null, _conversationId, new SendMessageRequest(content, null, default), key, streaming, CacheDirective.Default, 0);

    private async Task<Turn> StartAsync(TurnRequest request)
    {
        await using var scope = _services.CreateAsyncScope();
        var turn = await scope.ServiceProvider.GetRequiredService<ChatTurns>().StartAsync(request, Ct);
        if (turn.Generation is { } running)
        {
            await running.WaitAsync(Ct);
        }
        if (turn.StreamSlot is { } slot)
        {
            await slot.DisposeAsync();
        }
        return turn;
    }

    private async Task<(List<Message> Messages, int Keys, Conversation Conversation)> StoredAsync()
    {
        await using var scope = _services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        return (await db.Messages.AsNoTracking().OrderBy(m => m.CreatedAt).ToListAsync(Ct), await db.IdempotencyRecords.CountAsync(Ct),
            await db.Conversations.AsNoTracking().SingleAsync(Ct));
    }

    [Fact]
    public async Task A_turn_stores_the_question_and_its_answer_at_the_injected_time_and_names_the_conversation()
    {
        var turn = await StartAsync(Send("What is a lease?", key: "k1"));

        Assert.Null(turn.Refusal);
        var (messages, keys, conversation) = await StoredAsync();
        Assert.Equal([MessageRoles.User, MessageRoles.Assistant], messages.Select(m => m.Role));
        Assert.Equal(turn.AssistantId, messages[1].Id);
        Assert.Equal(messages[0].Id, messages[1].ParentMessageId);
        Assert.All(messages, m => Assert.Equal(_time.GetUtcNow().UtcDateTime, m.CreatedAt, TimeSpan.FromMilliseconds(1)));
        Assert.Equal(MessageStatuses.Complete, messages[1].Status);
        Assert.Equal(1, keys);
        Assert.Equal("What is a lease?", conversation.Title);
    }

    [Fact]
    public async Task A_turn_refused_by_the_concurrency_limit_stores_nothing()
    {
        var guard = _services.GetRequiredService<LimitGuard>();
        var (busy, _) = await guard.TakeSlotAsync(_userId);
        await using (busy)
        {
            var turn = await StartAsync(Send("Too many at once", key: "k2"));

            Assert.Equal(StatusCodes.Status429TooManyRequests, turn.Refusal?.Problem?.StatusCode);
            Assert.Equal(1, turn.Refusal!.RetryAfterSeconds);
        }
        var (messages, keys, _) = await StoredAsync();
        Assert.Empty(messages);
        Assert.Equal(0, keys);
    }

    [Fact]
    public async Task A_turn_refused_a_stream_slot_stores_nothing_and_holds_no_slot()
    {
        var guard = _services.GetRequiredService<LimitGuard>();
        var (open, _) = await guard.TakeStreamSlotAsync(_userId);
        await using (open)
        {
            var turn = await StartAsync(Send("Streams are full", streaming: true));

            Assert.Equal(StatusCodes.Status429TooManyRequests, turn.Refusal?.Problem?.StatusCode);
            Assert.Null(turn.StreamSlot);
        }
        Assert.Empty((await StoredAsync()).Messages);
        var (again, refused) = await guard.TakeStreamSlotAsync(_userId);
        Assert.Null(refused);
        await again!.DisposeAsync();
    }

    [Fact]
    public async Task The_same_idempotency_key_replays_the_first_turn_and_stores_nothing_more()
    {
        var first = await StartAsync(Send("Once only", key: "same"));
        var second = await StartAsync(Send("Once only", key: "same"));
        var reused = await StartAsync(Send("Something else", key: "same"));

        Assert.Null(second.Refusal);
        Assert.Equal(first.AssistantId, second.AssistantId);
        Assert.Equal(first.User!.Id, second.User!.Id);
        Assert.Equal(StatusCodes.Status422UnprocessableEntity, reused.Refusal?.Problem?.StatusCode);
        var (messages, keys, _) = await StoredAsync();
        Assert.Equal(2, messages.Count);
        Assert.Equal(1, keys);
    }

    [Fact]
    public async Task A_blank_message_is_refused_and_nothing_is_stored()
    {
        var turn = await StartAsync(Send("   "));

        Assert.NotNull(turn.Refusal?.Invalid);
        Assert.Empty((await StoredAsync()).Messages);
    }

    [Fact]
    public async Task A_turn_takes_all_its_limits_in_one_store_call_and_gives_them_back_in_one_more()
    {
        lock (_storeCalls)
        {
            _storeCalls.Clear();
        }
        var turn = await StartAsync(Send("One call admits me"));

        Assert.Null(turn.Refusal);
        // The request windows, the budget and the generation slot together; the slot freed with the settlement.
        Assert.Equal(["AdmitAsync(rates 1, slots concurrency)", "LeaveAsync(concurrency)"], Calls());

        var streamed = await StartAsync(Send("And me too", streaming: true));

        Assert.Null(streamed.Refusal);
        // The stream slot in the same call; freed when the response ends (here, by the test after the answer).
        Assert.Equal(["AdmitAsync(rates 1, slots streams concurrency)", "LeaveAsync(concurrency)", "LeaveAsync(streams)"], Calls());
    }

    [Fact]
    public async Task Every_answer_counts_once_in_the_request_windows_and_over_them_the_answer_is_429()
    {
        _services.GetRequiredService<Microsoft.Extensions.Options.IOptions<LimitsOptions>>().Value.RequestsPerMinutePerUser = 3;

        Assert.Null((await StartAsync(Send("Admitted and counted once"))).Refusal);
        Assert.NotNull((await StartAsync(Send("   "))).Refusal?.Invalid);
        var elsewhere = Send("No such conversation") with { ConversationId = Guid.NewGuid() };
        Assert.Equal(StatusCodes.Status404NotFound, (await StartAsync(elsewhere)).Refusal?.Problem?.StatusCode);

        // The fourth answer: over the window, refused before anything else it would have been refused for.
        var tooLong = await StartAsync(Send(new string('x', _services.GetRequiredService<LimitGuard>().Options.MaxMessageChars + 1)));
        Assert.Equal(StatusCodes.Status429TooManyRequests, tooLong.Refusal?.Problem?.StatusCode);
        Assert.Equal("user_rate", tooLong.Refusal!.Problem!.ProblemDetails.Extensions["limit"]);
        Assert.InRange(tooLong.Refusal.RetryAfterSeconds!.Value, 1, 60);
        Assert.Equal(StatusCodes.Status429TooManyRequests, (await StartAsync(Send("Over the limit"))).Refusal?.Problem?.StatusCode);
        Assert.Equal(2, (await StoredAsync()).Messages.Count);
    }

    [Fact]
    public async Task A_streamed_turn_refused_by_the_concurrency_limit_gives_its_stream_slot_back_and_an_invalid_one_takes_none()
    {
        var guard = _services.GetRequiredService<LimitGuard>();
        var (busy, _) = await guard.TakeSlotAsync(_userId);
        await using (busy)
        {
            var turn = await StartAsync(Send("No generation slot", streaming: true));

            Assert.Equal("concurrency", turn.Refusal?.Problem?.ProblemDetails.Extensions["limit"]);
            Assert.Null(turn.StreamSlot);
            var tooLong = await StartAsync(Send(new string('x', guard.Options.MaxMessageChars + 1), streaming: true));
            Assert.NotNull(tooLong.Refusal?.Invalid);
            Assert.Null(tooLong.StreamSlot);
        }
        var (open, refused) = await guard.TakeStreamSlotAsync(_userId);
        Assert.Null(refused);
        await open!.DisposeAsync();
        Assert.Empty((await StoredAsync()).Messages);
    }

    private string[] Calls()
    {
        lock (_storeCalls)
        {
            var calls = _storeCalls.ToArray();
            _storeCalls.Clear();
            return calls;
        }
    }

    /// <summary>The store with each call the limits make of it written down, buckets by kind.</summary>
    private sealed class RecordingLimitStore(InProcessLimitStore inner, List<string> calls) : ILimitStore
    {
        private void Record(string call)
        {
            lock (calls)
            {
                calls.Add(call);
            }
        }

        private static string Kind(string bucket) => bucket.Split(':')[0];

        public ValueTask<TimeSpan?> HitAsync(string bucket, int limit, TimeSpan window)
        {
            Record($"HitAsync({Kind(bucket)})");
            return inner.HitAsync(bucket, limit, window);
        }

        public ValueTask<(int Index, TimeSpan Wait)?> HitAllAsync(IReadOnlyList<(string Bucket, int Limit)> buckets, TimeSpan window, int checkOnly = 0)
        {
            Record($"HitAllAsync({buckets.Count})");
            return inner.HitAllAsync(buckets, window, checkOnly);
        }

        public ValueTask<TimeSpan?> PeekAsync(string bucket, int limit, TimeSpan window)
        {
            Record($"PeekAsync({Kind(bucket)})");
            return inner.PeekAsync(bucket, limit, window);
        }

        public ValueTask<string?> TryEnterAsync(string bucket, int max)
        {
            Record($"TryEnterAsync({Kind(bucket)})");
            return inner.TryEnterAsync(bucket, max);
        }

        public ValueTask LeaveAsync(string bucket, string slot, SpendDelta? spend = null)
        {
            Record($"LeaveAsync({Kind(bucket)})");
            return inner.LeaveAsync(bucket, slot, spend);
        }

        public ValueTask<decimal?> GetSpendAsync(Guid userId, string month)
        {
            Record("GetSpendAsync");
            return inner.GetSpendAsync(userId, month);
        }

        public ValueTask<decimal> SeedSpendAsync(Guid userId, string month, decimal total)
        {
            Record("SeedSpendAsync");
            return inner.SeedSpendAsync(userId, month, total);
        }

        public ValueTask AddSpendAsync(Guid userId, string month, decimal amount)
        {
            Record("AddSpendAsync");
            return inner.AddSpendAsync(userId, month, amount);
        }

        public ValueTask<ReserveOutcome> TryReserveSpendAsync(Guid userId, string month, decimal amount, decimal? budget, decimal? seed = null)
        {
            Record("TryReserveSpendAsync");
            return inner.TryReserveSpendAsync(userId, month, amount, budget, seed);
        }

        public ValueTask<Admission> AdmitAsync(AdmissionRequest request)
        {
            Record($"AdmitAsync(rates {request.Rates.Count}, slots {string.Join(' ', request.Slots.Select(s => Kind(s.Bucket)))})");
            return ((ILimitStore)inner).AdmitAsync(request);
        }
    }
}
