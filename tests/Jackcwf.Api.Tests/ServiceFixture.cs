using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Jackcwf.Testing;
using Microsoft.EntityFrameworkCore;

namespace Jackcwf.Api.Tests;

/// <summary>
/// The built service as a process with a fake LLM server behind its OpenAI and Anthropic
/// providers. Subclasses choose the database. The first user registered is the administrator.
/// </summary>
public abstract class ServiceFixture : IAsyncLifetime
{
    public ApiProcess Api { get; private set; } = null!;
    public FakeLlmServer Fake { get; private set; } = null!;
    public TestUser Admin { get; private set; } = null!;

    protected abstract Task<IReadOnlyDictionary<string, string?>> DatabaseAsync();

    protected virtual IReadOnlyDictionary<string, string?> ExtraEnvironment => new Dictionary<string, string?>();

    public async ValueTask InitializeAsync()
    {
        Fake = await FakeLlmServer.StartAsync();
        var env = new Dictionary<string, string?>
        {
            ["OPENAI_API_KEY"] = "sk-test-openai",
            ["OPENAI_BASE_URL"] = Fake.OpenAiBaseUrl.ToString(),
            ["ANTHROPIC_API_KEY"] = "sk-ant-test",
            ["ANTHROPIC_BASE_URL"] = Fake.AnthropicBaseUrl.ToString(),
            ["DEFAULT_MODEL"] = "demo/echo",
            ["DEMO_CHUNK_DELAY_MS"] = "5",
            ["SHUTDOWN_DRAIN_DELAY_SECONDS"] = "0",
            ["MONITORING_INTERVAL_SECONDS"] = "60",
            ["Chat__KeepAliveIntervalMs"] = "300",
            ["Chat__CheckpointIntervalMs"] = "100",
            // These suites see each provider error as it is (one queued error, one failure): retries,
            // fallbacks and the circuit breaker have their own suite (PipelineResilienceTests). With the
            // default breaker (half of 10 calls in 30 s), a class's provider-error tests in a row would
            // open it and the class's next provider call would be refused without reaching the fake.
            ["PROVIDER_MAX_RETRIES"] = "0",
            ["CIRCUIT_BREAKER_MINIMUM_THROUGHPUT"] = "100000",
        };
        foreach (var (k, v) in await DatabaseAsync())
        {
            env[k] = v;
        }
        foreach (var (k, v) in ExtraEnvironment)
        {
            env[k] = v;
        }
        Api = await ApiProcess.StartAsync(new ApiProcessOptions { Environment = env });
        Admin = await CreateUserAsync();
    }

    public async Task<TestUser> CreateUserAsync(string? password = null)
    {
        var email = $"u{Guid.NewGuid():N}@example.com";
        password ??= "Passw0rd-" + Guid.NewGuid().ToString("N")[..6];
        var http = Api.CreateClient();
        var reg = await http.PostAsJsonAsync("api/auth/register", new { email, password });
        Assert.True(reg.IsSuccessStatusCode, $"register: {(int)reg.StatusCode} {await reg.Content.ReadAsStringAsync()}");
        var login = await http.PostAsJsonAsync("api/auth/login", new { email, password });
        Assert.Equal(HttpStatusCode.OK, login.StatusCode);
        var tokens = await login.Content.ReadFromJsonAsync<JsonElement>();
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", tokens.GetProperty("accessToken").GetString());
        var me = await http.GetFromJsonAsync<JsonElement>("api/me");
        return new TestUser(http, email, password, me.GetProperty("id").GetGuid(), tokens.GetProperty("refreshToken").GetString()!);
    }

    public async ValueTask DisposeAsync()
    {
        if (Api is not null)
        {
            await Api.DisposeAsync();
        }
        if (Fake is not null)
        {
            await Fake.DisposeAsync();
        }
        await DisposeDatabaseAsync();
        GC.SuppressFinalize(this);
    }

    protected virtual ValueTask DisposeDatabaseAsync() => ValueTask.CompletedTask;

    /// <summary>A context on the service's own database, for checks the API cannot make (which rows remain).</summary>
    public virtual Jackcwf.Api.Data.AppDbContext OpenDatabase() => throw new NotSupportedException($"{GetType().Name} does not open its database.");
}

public class SqliteServiceFixture : ServiceFixture
{
    // No DATABASE_URL: the default SQLite file under the process's working directory.
    protected override Task<IReadOnlyDictionary<string, string?>> DatabaseAsync() =>
        Task.FromResult<IReadOnlyDictionary<string, string?>>(new Dictionary<string, string?> { ["DATABASE_URL"] = null });

    public override Jackcwf.Api.Data.AppDbContext OpenDatabase() => SqliteDatabase(Api);

    public static Jackcwf.Api.Data.AppDbContext SqliteDatabase(ApiProcess api) =>
        new Jackcwf.Api.Data.SqliteAppDbContext(new Microsoft.EntityFrameworkCore.DbContextOptionsBuilder<Jackcwf.Api.Data.SqliteAppDbContext>()
            .UseSqlite($"Data Source={Path.Combine(api.WorkingDirectory, Jackcwf.Api.Data.DatabaseConnection.DefaultSqlitePath)}").Options);
}

public class PostgresServiceFixture : ServiceFixture
{
    private TestDatabase? _db;

    protected override async Task<IReadOnlyDictionary<string, string?>> DatabaseAsync()
    {
        _db = await TestPostgres.CreateDatabaseAsync("api");
        // The seed's SQLAlchemy form is accepted as is.
        return new Dictionary<string, string?> { ["DATABASE_URL"] = _db.Url.Replace("postgresql://", "postgresql+asyncpg://") };
    }

    public override Jackcwf.Api.Data.AppDbContext OpenDatabase() =>
        new Jackcwf.Api.Data.PostgresAppDbContext(new Microsoft.EntityFrameworkCore.DbContextOptionsBuilder<Jackcwf.Api.Data.PostgresAppDbContext>()
            .UseNpgsql(_db!.ConnectionString).Options);

    protected override async ValueTask DisposeDatabaseAsync()
    {
        if (_db is not null)
        {
            await _db.DisposeAsync();
        }
    }
}

public sealed record TestUser(HttpClient Http, string Email, string Password, Guid Id, string RefreshToken)
{
    public async Task<Guid> CreateConversationAsync(object? body = null)
    {
        var r = await Http.PostAsJsonAsync("api/conversations", body ?? new { });
        Assert.Equal(HttpStatusCode.Created, r.StatusCode);
        return (await r.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
    }

    public async Task<JsonElement> SendAsync(Guid conversation, object body, string? idempotencyKey = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"api/conversations/{conversation}/messages") { Content = JsonContent.Create(body) };
        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }
        var r = await Http.SendAsync(request);
        var text = await r.Content.ReadAsStringAsync();
        Assert.True(r.StatusCode == HttpStatusCode.OK, $"send: {(int)r.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    public async Task<HttpResponseMessage> StreamAsync(Guid conversation, object body, string? idempotencyKey = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, $"api/conversations/{conversation}/messages") { Content = JsonContent.Create(body) };
        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }
        return await Http.SendForEventsAsync(request);
    }

    public async Task<JsonObject> GetConversationAsync(Guid conversation) =>
        (await Http.GetFromJsonAsync<JsonObject>($"api/conversations/{conversation}"))!;

    public async Task<JsonObject> WaitForMessageAsync(Guid conversation, Guid message, Func<JsonObject, bool> until, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(20));
        while (true)
        {
            var c = await GetConversationAsync(conversation);
            var m = c["messages"]!.AsArray().Select(x => x!.AsObject()).First(x => x["id"]!.GetValue<Guid>() == message);
            if (until(m) || DateTime.UtcNow > deadline)
            {
                return m;
            }
            await Task.Delay(100);
        }
    }
}

public static class Words
{
    /// <summary>A long text with irregular spacing, so concatenation mistakes show.</summary>
    public static string Long(int count) =>
        string.Join("", Enumerable.Range(0, count).Select(i => i % 7 == 3 ? $"w{i}  " : i % 11 == 5 ? $"w{i}\n" : $"w{i} ")).TrimEnd();
}
