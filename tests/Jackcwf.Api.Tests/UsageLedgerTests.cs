using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Jackcwf.Testing;
using Npgsql;

namespace Jackcwf.Api.Tests;

/// <summary>
/// PostgreSQL, and a usage ledger that never writes on its own during a test (a flush interval of
/// ten minutes and batches larger than any test makes): every row reaches the database through a
/// read of the ledger or through the final flush of a graceful stop.
/// </summary>
public sealed class HeldLedgerFixture : ServiceFixture
{
    private TestDatabase? _db;

    public string ConnectionString => _db!.ConnectionString;

    protected override async Task<IReadOnlyDictionary<string, string?>> DatabaseAsync()
    {
        _db = await TestPostgres.CreateDatabaseAsync("ledger");
        return new Dictionary<string, string?> { ["DATABASE_URL"] = _db.Url };
    }

    protected override IReadOnlyDictionary<string, string?> ExtraEnvironment => new Dictionary<string, string?>
    {
        ["USAGE_FLUSH_INTERVAL_MS"] = "600000",
        ["USAGE_FLUSH_BATCH_ROWS"] = "2000",
    };

    protected override async ValueTask DisposeDatabaseAsync()
    {
        if (_db is not null)
        {
            await _db.DisposeAsync();
        }
    }
}

/// <summary>The usage ledger is written in batches off the request path, and nothing recorded is lost.</summary>
public sealed class UsageLedgerTests(HeldLedgerFixture fx) : IClassFixture<HeldLedgerFixture>
{
    private const int Messages = 6;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task CallsAreAnsweredBeforeTheirUsageIsWrittenAndTheReportSeesThemInOneInsert()
    {
        await CountInsertStatementsAsync();
        var u = await fx.CreateUserAsync();
        var key = await CreateKeyAsync(u);
        await MakeCallsAsync(u, key);

        // Answered, yet not one ledger line written: the calls only queued them.
        Assert.Equal(0, await RowsAsync(u.Id));
        Assert.Equal(0, await InsertStatementsAsync());

        var usage = await u.Http.GetFromJsonAsync<JsonElement>("api/usage", Ct);
        Assert.Equal(Messages + 2, usage.GetProperty("totals").GetProperty("requests").GetInt32());
        Assert.Equal((Messages + 2) * 10, usage.GetProperty("totals").GetProperty("inputTokens").GetInt64());
        var gateway = usage.GetProperty("byModel").EnumerateArray().Single(m => m.GetProperty("model").GetString() == "openai/gpt-4o-mini");
        Assert.Equal(Messages + 2, gateway.GetProperty("requests").GetInt32());

        Assert.Equal(Messages + 2, await RowsAsync(u.Id));
        // Every chat message and /v1 call of the batch, in one statement (a binary COPY; it used to be one INSERT per call).
        Assert.Equal(1, await InsertStatementsAsync());
    }

    [Fact]
    public async Task AGracefulStopWritesEveryQueuedLine()
    {
        var u = await fx.CreateUserAsync();
        var key = await CreateKeyAsync(u);
        await MakeCallsAsync(u, key);
        Assert.Equal(0, await RowsAsync(u.Id));

        await fx.Api.RestartAsync(cancellationToken: Ct);

        Assert.Equal(Messages + 2, await RowsAsync(u.Id));
        var usage = await u.Http.GetFromJsonAsync<JsonElement>("api/usage", Ct);
        Assert.Equal(Messages + 2, usage.GetProperty("totals").GetProperty("requests").GetInt32());
        Assert.Equal(0.0000075m * (Messages + 2), usage.GetProperty("totals").GetProperty("costUsd").GetDecimal());
    }

    [Fact]
    public async Task AFailedWriteKeepsEveryLineAndTheRetryWritesEachOnce()
    {
        var u = await fx.CreateUserAsync();
        var key = await CreateKeyAsync(u);
        await MakeCallsAsync(u, key);
        // The ledger table refuses writes: the batch's COPY fails, the rows stay in memory.
        await ScalarAsync("""
            CREATE OR REPLACE FUNCTION test_refuse_ledger() RETURNS trigger LANGUAGE plpgsql AS
              $$ BEGIN RAISE EXCEPTION 'ledger refused by the test'; END $$;
            CREATE OR REPLACE TRIGGER test_refuse_ledger BEFORE INSERT ON usage_records
              FOR EACH STATEMENT EXECUTE FUNCTION test_refuse_ledger();
            """, null);
        try
        {
            var refused = await u.Http.GetAsync("api/usage", Ct);
            Assert.False(refused.IsSuccessStatusCode);
            Assert.Equal(0, await RowsAsync(u.Id));
        }
        finally
        {
            await ScalarAsync("DROP TRIGGER test_refuse_ledger ON usage_records", null);
        }

        // The retry (an INSERT that skips rows already written) writes every line, once.
        var usage = await u.Http.GetFromJsonAsync<JsonElement>("api/usage", Ct);
        Assert.Equal(Messages + 2, usage.GetProperty("totals").GetProperty("requests").GetInt32());
        Assert.Equal(Messages + 2, await RowsAsync(u.Id));
    }

    private async Task MakeCallsAsync(TestUser u, string key)
    {
        var c = await u.CreateConversationAsync(new { model = "openai/gpt-4o-mini" });
        for (var i = 0; i < Messages; i++)
        {
            fx.Fake.Enqueue(new FakeScenario { Text = $"answer {i}", InputTokens = 10, OutputTokens = 10 });
            var sent = await u.SendAsync(c, new { content = $"question {i}" });
            Assert.Equal($"answer {i}", sent.GetProperty("assistantMessage").GetProperty("content").GetString());
        }
        using var gateway = fx.Api.CreateClient();
        gateway.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        foreach (var stream in new[] { false, true })
        {
            fx.Fake.Enqueue(new FakeScenario { Text = "from the gateway", InputTokens = 10, OutputTokens = 10 });
            var r = await gateway.PostAsJsonAsync("v1/chat/completions",
                new { model = "openai/gpt-4o-mini", stream, messages = new[] { new { role = "user", content = "hi" } } }, Ct);
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            Assert.Contains("gateway", await r.Content.ReadAsStringAsync(Ct));
        }
    }

    private static async Task<string> CreateKeyAsync(TestUser u)
    {
        var r = await u.Http.PostAsJsonAsync("api/keys", new { name = "ledger" }, Ct);
        Assert.Equal(HttpStatusCode.Created, r.StatusCode);
        return (await r.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("key").GetString()!;
    }

    private async Task<long> RowsAsync(Guid userId) =>
        (long)(await ScalarAsync("SELECT count(*) FROM usage_records WHERE \"UserId\" = @u", userId))!;

    // A statement-level trigger counts INSERT statements on the ledger table (not rows).
    private Task CountInsertStatementsAsync() => ScalarAsync("""
        CREATE TABLE IF NOT EXISTS test_ledger_inserts (at timestamptz NOT NULL DEFAULT now());
        TRUNCATE test_ledger_inserts;
        CREATE OR REPLACE FUNCTION test_count_ledger_insert() RETURNS trigger LANGUAGE plpgsql AS
          $$ BEGIN INSERT INTO test_ledger_inserts DEFAULT VALUES; RETURN NULL; END $$;
        CREATE OR REPLACE TRIGGER test_count_ledger_insert AFTER INSERT ON usage_records
          FOR EACH STATEMENT EXECUTE FUNCTION test_count_ledger_insert();
        """, null);

    private async Task<long> InsertStatementsAsync() => (long)(await ScalarAsync("SELECT count(*) FROM test_ledger_inserts", null))!;

    private async Task<object?> ScalarAsync(string sql, Guid? userId)
    {
        await using var connection = new NpgsqlConnection(fx.ConnectionString);
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand(sql, connection);
        if (userId is { } id)
        {
            command.Parameters.AddWithValue("u", id);
        }
        return await command.ExecuteScalarAsync(Ct);
    }
}
