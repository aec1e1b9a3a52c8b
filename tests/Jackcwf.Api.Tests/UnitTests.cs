using Jackcwf.Api.Ai;
using Jackcwf.Api.Chat;
using Jackcwf.Api.Configuration;
using Jackcwf.Api.Data;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Configuration;

namespace Jackcwf.Api.Tests;

public sealed class DatabaseUrlTests
{
    [Theory]
    [InlineData("postgresql://app:s3cr%40t@db.internal:6543/chat", "db.internal", 6543, "chat", "app", "s3cr@t")]
    [InlineData("postgres://app:pw@db/chat", "db", 5432, "chat", "app", "pw")]
    [InlineData("postgresql+asyncpg://user:pass@host:5432/db", "host", 5432, "db", "user", "pass")]
    public void PostgresUrlsInEveryAcceptedFormBecomeNpgsqlSettings(string url, string host, int port, string database, string user, string password)
    {
        var c = DatabaseConnection.Parse(url, "/tmp");
        Assert.Equal(DatabaseProvider.PostgreSql, c.Provider);
        var b = new Npgsql.NpgsqlConnectionStringBuilder(c.ConnectionString);
        Assert.Equal((host, port, database, user, password), (b.Host, b.Port, b.Database, b.Username, b.Password));
    }

    [Fact]
    public void UnsetUrlMeansSqliteUnderData()
    {
        var root = Path.Combine(Path.GetTempPath(), Guid.NewGuid().ToString("N"));
        var c = DatabaseConnection.Parse(null, root);
        Assert.Equal(DatabaseProvider.Sqlite, c.Provider);
        Assert.Contains(Path.Combine(root, "data", "jackcwf.db"), c.ConnectionString);
        Assert.True(Directory.Exists(Path.Combine(root, "data")));
    }

    [Fact]
    public void UnsupportedSchemeIsRefusedWithAFix()
    {
        var e = Assert.Throws<FormatException>(() => DatabaseConnection.Parse("mysql://x@y/z", "/tmp"));
        Assert.Contains("DATABASE_URL", e.Message);
        Assert.Contains("postgresql://", e.Message);
    }
}

public sealed class EnvironmentVariableTests
{
    [Fact]
    public void InvalidValuesAreNamedAndSecretsAreNotEchoed()
    {
        var env = new Dictionary<string, string>
        {
            ["GRACEFUL_SHUTDOWN_TIMEOUT"] = "soon",
            ["ENABLE_MONITORING"] = "maybe",
            ["PORT"] = "70000",
            ["OPENAI_BASE_URL"] = "ftp://x",
            ["MONITORING_INTERVAL_SECONDS"] = "15",
        };
        var config = new ConfigurationBuilder();
        var errors = EnvironmentVariables.Apply(config, n => env.GetValueOrDefault(n));
        Assert.Equal(4, errors.Count);
        Assert.Contains(errors, e => e.StartsWith("GRACEFUL_SHUTDOWN_TIMEOUT", StringComparison.Ordinal) && e.Contains("\"soon\""));
        Assert.Contains(errors, e => e.StartsWith("ENABLE_MONITORING", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("PORT", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("OPENAI_BASE_URL", StringComparison.Ordinal));
        Assert.Equal("15", config.Build()["Monitoring:IntervalSeconds"]);
    }

    [Fact]
    public void SecretValuesAreHiddenInErrors()
    {
        var errors = EnvironmentVariables.Apply(new ConfigurationBuilder(), n => n == "DATABASE_URL" ? null : null);
        Assert.Empty(errors);
        Assert.All(EnvironmentVariables.All.Where(v => v.Name.EndsWith("_API_KEY", StringComparison.Ordinal)), v => Assert.True(v.Secret));
    }
}

public sealed class DemoModelTests
{
    [Theory]
    [InlineData("Hello there, world")]
    [InlineData("  leading and trailing  ")]
    [InlineData("tabs\tand\nnew lines\n\n")]
    [InlineData("")]
    public async Task ChunksConcatenateToTheExactLastUserMessage(string text)
    {
        var client = new DemoEchoChatClient(TimeSpan.Zero);
        var updates = new List<ChatResponseUpdate>();
        await foreach (var u in client.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, "earlier"), new ChatMessage(ChatRole.User, text)], cancellationToken: TestContext.Current.CancellationToken))
        {
            updates.Add(u);
        }
        Assert.Equal(text, string.Concat(updates.Select(u => u.Text)));
        var usage = updates.SelectMany(u => u.Contents).OfType<UsageContent>().Single();
        Assert.Equal(DemoEchoChatClient.SplitWords(text).Count, usage.Details.OutputTokenCount);
    }
}

public sealed class EventLogTests
{
    [Fact]
    public async Task ReadingFromAnOffsetInsideADeltaReturnsOnlyTheMissingPart()
    {
        using var log = new InProcessGenerationEventLog();
        var id = Guid.NewGuid();
        await log.BeginAsync(id);
        await log.AppendDeltaAsync(id, "Hello ", 6);
        await log.AppendDeltaAsync(id, "brave ", 12);
        await log.AppendDeltaAsync(id, "world", 17);
        await log.CompleteAsync(id, new GenerationEvent(GenerationEvent.Done, "17", "{}"));
        Assert.True(log.TryRead(id, 8, TimeSpan.FromSeconds(1), TestContext.Current.CancellationToken, out var events));
        var read = new List<GenerationEvent>();
        await foreach (var e in events)
        {
            read.Add(e);
        }
        Assert.Equal(["ave ", "world"], read.Where(e => e.Type == GenerationEvent.Delta).Select(e => e.Data));
        Assert.Equal(["12", "17"], read.Where(e => e.Type == GenerationEvent.Delta).Select(e => e.Id));
        Assert.Equal(GenerationEvent.Done, read[^1].Type);
        Assert.False(log.TryRead(Guid.NewGuid(), 0, TimeSpan.FromSeconds(1), TestContext.Current.CancellationToken, out _));
    }

    [Fact]
    public async Task WaitingReadersGetKeepAlivesThenNewDeltas()
    {
        using var log = new InProcessGenerationEventLog();
        var id = Guid.NewGuid();
        await log.BeginAsync(id);
        Assert.True(log.TryRead(id, 0, TimeSpan.FromMilliseconds(50), TestContext.Current.CancellationToken, out var events));
        var reader = Task.Run(async () =>
        {
            var got = new List<GenerationEvent>();
            await foreach (var e in events)
            {
                got.Add(e);
            }
            return got;
        });
        await Task.Delay(200, TestContext.Current.CancellationToken);
        await log.AppendDeltaAsync(id, "late", 4);
        await log.CompleteAsync(id, new GenerationEvent(GenerationEvent.Done, "4", "{}"));
        var all = await reader;
        Assert.Contains(all, e => e.Type == GenerationEvent.KeepAlive);
        Assert.Equal("late", all.Single(e => e.Type == GenerationEvent.Delta).Data);
    }
}

public sealed class ProviderFailureTests
{
    [Fact]
    public void ConnectionRefusedIsUnavailable()
    {
        var f = ProviderFailure.Classify(new HttpRequestException("refused", new System.Net.Sockets.SocketException(111)), Providers.OpenAI);
        Assert.Equal(("unavailable", 503), (f.Kind, f.HttpStatus));
        Assert.Equal("stream_broken", f.MidStream().Kind);
    }

    [Fact]
    public void TimeoutIsGatewayTimeout() =>
        Assert.Equal(504, ProviderFailure.Classify(new TaskCanceledException(), Providers.Anthropic).HttpStatus);
}

public sealed class LogFormatTests
{
    [Theory]
    [InlineData(null, false, true)]
    [InlineData(null, true, false)]
    [InlineData("json", false, false)]
    [InlineData("text", true, true)]
    [InlineData(" TEXT ", true, true)]
    public void UnsetLogFormatIsTextAtATerminalAndJsonElsewhere(string? format, bool outputRedirected, bool text)
    {
        Assert.Equal(text, Jackcwf.ServiceDefaults.Extensions.UseTextLogs(format, outputRedirected));
    }
}
