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

    [Theory]
    [InlineData("postgresql://app:pw@h1:5432,h2:5433,h3:5434/chat?target_session_attrs=read-write")]
    [InlineData("postgresql+asyncpg://app:pw@h1:5432,h2:5433,h3:5434/chat?target_session_attrs=read-write")]
    [InlineData("postgres://app:pw@h1:5432,h2:5433,h3:5434/chat?target_session_attrs=primary")]
    [InlineData("postgresql+psycopg://app:pw@h1,h2:5433,h3:5434/chat?target_session_attrs=read-write")]
    [InlineData("postgresql://app:pw@h1:5432,h2:5433,h3:5434/chat")]
    public void MultiHostUrlsBecomeNpgsqlMultiHostSettingsThatFollowThePrimary(string url)
    {
        var c = DatabaseConnection.Parse(url, "/tmp");
        Assert.Equal(DatabaseProvider.PostgreSql, c.Provider);
        var b = new Npgsql.NpgsqlConnectionStringBuilder(c.ConnectionString);
        Assert.Equal("h1:5432,h2:5433,h3:5434", b.Host);
        Assert.Equal(("chat", "app", "pw"), (b.Database, b.Username, b.Password));
        Assert.Equal("primary", b.TargetSessionAttributes, ignoreCase: true);
        Assert.Equal(2, b.HostRecheckSeconds);
        // Npgsql itself accepts the result as a multi-host data source.
        using var source = Npgsql.NpgsqlDataSource.Create(c.ConnectionString);
        Assert.IsType<Npgsql.NpgsqlMultiHostDataSource>(source);
    }

    [Theory]
    [InlineData("any", "any")]
    [InlineData("read-write", "primary")]
    [InlineData("primary", "primary")]
    [InlineData("read-only", "read-only")]
    [InlineData("standby", "standby")]
    [InlineData("prefer-standby", "prefer-standby")]
    public void TargetSessionAttrsMapToNpgsqlNames(string libpq, string npgsql)
    {
        var c = DatabaseConnection.Parse($"postgresql://u:p@a:5432,b:5432/db?target_session_attrs={libpq}", "/tmp");
        Assert.Equal(npgsql, new Npgsql.NpgsqlConnectionStringBuilder(c.ConnectionString).TargetSessionAttributes, ignoreCase: true);
    }

    [Fact]
    public void OptionsOfAMultiHostUrlOverrideItsDefaults()
    {
        var c = DatabaseConnection.Parse("postgresql://u:p@a:5432,[::1]:5433/db?Host%20Recheck%20Seconds=7&connect_timeout=4&application_name=x", "/tmp");
        var b = new Npgsql.NpgsqlConnectionStringBuilder(c.ConnectionString);
        Assert.Equal(("a:5432,::1:5433", 7, 4, "x"), (b.Host, b.HostRecheckSeconds, b.Timeout, b.ApplicationName));
    }

    [Theory]
    [InlineData("postgresql://u:p@db:5432/x", true)]
    [InlineData("postgresql://u:p@db:5432/x?No%20Reset%20On%20Close=false", false)]
    [InlineData("Host=db;Username=u;Database=x;No Reset On Close=false", false)]
    [InlineData("Host=db;Username=u;Database=x;NoResetOnClose=false", false)]
    public void ServiceConnectionsSkipThePoolResetUnlessTheUrlKeepsIt(string url, bool skipped)
    {
        var service = DataExtensions.ServiceConnectionString(DatabaseConnection.Parse(url, "/tmp").ConnectionString);
        var b = new Npgsql.NpgsqlConnectionStringBuilder(service);
        Assert.Equal(skipped, b.NoResetOnClose);
        Assert.Equal(("db", "u", "x"), (b.Host, b.Username, b.Database));
    }

    [Theory]
    [InlineData("postgresql://u:p@db:5432/x", DataExtensions.MaxAutoPrepare)]
    [InlineData("postgresql://u:p@db:5432/x?Max%20Auto%20Prepare=0", 0)]
    [InlineData("Host=db;Username=u;Database=x;Max Auto Prepare=7", 7)]
    [InlineData("Host=db;Username=u;Database=x;MaxAutoPrepare=0", 0)]
    public void ServiceConnectionsPrepareRepeatedStatementsUnlessTheUrlSaysOtherwise(string url, int prepared)
    {
        var b = new Npgsql.NpgsqlConnectionStringBuilder(DataExtensions.ServiceConnectionString(DatabaseConnection.Parse(url, "/tmp").ConnectionString));
        Assert.Equal(prepared, b.MaxAutoPrepare);
        Assert.Equal(("db", "u", "x"), (b.Host, b.Username, b.Database));
    }

    [Fact]
    public void SingleHostUrlWithTargetSessionAttrsKeepsOneHost()
    {
        var b = new Npgsql.NpgsqlConnectionStringBuilder(DatabaseConnection.Parse("postgresql://u:p@db:6000/x?target_session_attrs=read-write", "/tmp").ConnectionString);
        Assert.Equal(("db", 6000, "primary"), (b.Host, b.Port, b.TargetSessionAttributes));
    }

    [Theory]
    [InlineData("postgresql://u:p@h1:5432,h2:99999/db", "port")]
    [InlineData("postgresql://u:p@h1:5432,,h3:5432/db", "no host")]
    [InlineData("postgresql://u:p@/db", "no host")]
    [InlineData("postgresql://u:p@h1:5432,h2:x/db", "port")]
    [InlineData("postgresql://u:p@h1,h2/db?target_session_attrs=leader", "target_session_attrs")]
    [InlineData("postgresql://u:p@[::1:5432/db", "IPv6")]
    public void WrongMultiHostFormsAreRefusedNamingTheVariable(string url, string detail)
    {
        var e = Assert.Throws<FormatException>(() => DatabaseConnection.Parse(url, "/tmp"));
        Assert.StartsWith("DATABASE_URL", e.Message, StringComparison.Ordinal);
        Assert.Contains(detail, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(":p@", e.Message, StringComparison.Ordinal);
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

public sealed class RedisUrlTests
{
    [Theory]
    [InlineData("redis+sentinel://s1:26379,s2:26380,s3:26381/mymaster", null, null)]
    [InlineData("redis+sentinel://:s3cr%40t@s1:26379,s2:26380,s3:26381/mymaster/2", "s3cr@t", 2)]
    [InlineData("s1:26379,s2:26380,s3:26381,serviceName=mymaster", null, null)]
    [InlineData("s1:26379,s2:26380,s3:26381,serviceName=mymaster,password=pw", "pw", null)]
    public void SentinelFormsNameTheSentinelsAndTheMaster(string url, string? password, int? database)
    {
        var o = Jackcwf.Api.Backplane.RedisUrl.Parse(url);
        Assert.Equal("mymaster", o.ServiceName);
        Assert.Equal(["s1:26379", "s2:26380", "s3:26381"], o.EndPoints.Select(e => e.ToString()!.Replace("Unspecified/", "", StringComparison.Ordinal)));
        Assert.Equal(password, o.Password);
        Assert.Equal(database, o.DefaultDatabase);
        // A failover must never stop the service: it keeps reconnecting and fails fast meanwhile.
        Assert.False(o.AbortOnConnectFail);
    }

    [Fact]
    public void SentinelPortDefaultsTo26379()
    {
        var o = Jackcwf.Api.Backplane.RedisUrl.Parse("redis+sentinel://s1,s2/mymaster");
        Assert.Equal(["s1:26379", "s2:26379"], o.EndPoints.Select(e => e.ToString()!.Replace("Unspecified/", "", StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData("redis+sentinel://s1:26379,s2:26379")]
    [InlineData("redis+sentinel://s1:26379,s2:26379/")]
    [InlineData("redis+sentinel://:topsecret@s1:x/mymaster")]
    [InlineData("redis+sentinel://s1:26379,,s2/mymaster")]
    [InlineData("redis+sentinel://s1:26379/mymaster/zero")]
    [InlineData("s1:26379,password=topsecret,nosuchkeyword=1")]
    public void WrongFormsAreRefusedNamingTheVariable(string url)
    {
        var e = Assert.Throws<FormatException>(() => Jackcwf.Api.Backplane.RedisUrl.Parse(url));
        Assert.StartsWith("REDIS_URL", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("topsecret", e.Message, StringComparison.Ordinal);
    }
}

public sealed class FailoverRetryTests
{
    [Theory]
    [InlineData("57P01", true)]
    [InlineData("57P03", true)]
    [InlineData("08006", true)]
    [InlineData("25006", true)]
    [InlineData("23505", false)]
    [InlineData("42601", false)]
    public void ConnectionLossIsRetriedAndAnswersFromAHealthyServerAreNot(string sqlState, bool retried)
    {
        var e = new Npgsql.PostgresException("x", "FATAL", "FATAL", sqlState);
        Assert.Equal(retried, FailoverExecutionStrategy.IsConnectionLoss(new Microsoft.EntityFrameworkCore.DbUpdateException("save", e)));
    }

    [Fact]
    public void NoPrimaryFoundIsRetried() =>
        Assert.True(FailoverExecutionStrategy.IsConnectionLoss(new Npgsql.NpgsqlException("No suitable host was found.")));
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
    [InlineData("Hello there, world", 3)]
    [InlineData("  leading and trailing  ", 3)]
    [InlineData("tabs\tand\nnew lines\n\n", 4)]
    [InlineData("   ", 1)]
    [InlineData("", 0)]
    public async Task ChunksConcatenateToTheExactLastUserMessage(string text, int words)
    {
        var client = new DemoEchoChatClient(TimeSpan.Zero);
        var updates = new List<ChatResponseUpdate>();
        await foreach (var u in client.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, "earlier"), new ChatMessage(ChatRole.User, text)], cancellationToken: TestContext.Current.CancellationToken))
        {
            updates.Add(u);
        }
        Assert.Equal(text, string.Concat(updates.Select(u => u.Text)));
        Assert.Equal(words, updates.Count(u => u.Text.Length > 0));
        var usage = updates.SelectMany(u => u.Contents).OfType<UsageContent>().Single();
        Assert.Equal(words, usage.Details.OutputTokenCount);
        Assert.Equal(1 + words, usage.Details.InputTokenCount);
        Assert.Equal(ChatFinishReason.Stop, updates[^1].FinishReason);
    }

    [Fact]
    public async Task MaxOutputTokensCutsTheAnswerWithFinishReasonLength()
    {
        var client = new DemoEchoChatClient(TimeSpan.Zero);
        var updates = new List<ChatResponseUpdate>();
        await foreach (var u in client.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, "one two three four")], new ChatOptions { MaxOutputTokens = 2 }, TestContext.Current.CancellationToken))
        {
            updates.Add(u);
        }
        Assert.Equal("one two ", string.Concat(updates.Select(u => u.Text)));
        Assert.Equal(ChatFinishReason.Length, updates[^1].FinishReason);
        Assert.Equal(2, updates.SelectMany(u => u.Contents).OfType<UsageContent>().Single().Details.OutputTokenCount);
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

public sealed class ApiKeyPrincipalTests
{
    private static Accounts.UserAccess User(string email, params string[] roles) =>
        new(Guid.NewGuid(), email, false, null, roles);

    [Fact]
    public void AKeysPrincipalIsSharedUntilItsAccountChangesAndThenCarriesTheNewClaims()
    {
        var user = User("ann@example.com");
        var owner = new Accounts.KeyOwner(Guid.NewGuid(), user.UserId);
        var first = Accounts.ApiKeyPrincipal.For(owner, user, "ApiKey");
        Assert.Same(first, Accounts.ApiKeyPrincipal.For(owner, user, "ApiKey"));
        Assert.False(first.IsInRole("admin"));

        // The account cache holds a new entry after any change: its principal is built again.
        var promoted = user with { Email = "ann@example.org", Roles = ["admin"] };
        var second = Accounts.ApiKeyPrincipal.For(owner, promoted, "ApiKey");
        Assert.NotSame(first, second);
        Assert.True(second.IsInRole("admin"));
        Assert.Equal("ann@example.org", second.FindFirst(System.Security.Claims.ClaimTypes.Email)?.Value);
        // Another key of the same account has a principal of its own, naming that key.
        var other = new Accounts.KeyOwner(Guid.NewGuid(), user.UserId);
        Assert.Equal(other.KeyId, Accounts.ApiKeyClaims.ApiKeyId(Accounts.ApiKeyPrincipal.For(other, promoted, "ApiKey")));
    }

    [Fact]
    public void ItAnswersAsAClaimsPrincipalOfTheSameClaimsAndCannotBeChanged()
    {
        var user = User("bob@example.com", "admin", "auditor");
        var owner = new Accounts.KeyOwner(Guid.NewGuid(), user.UserId);
        var principal = Accounts.ApiKeyPrincipal.For(owner, user, "ApiKey");
        var plain = new System.Security.Claims.ClaimsPrincipal(new System.Security.Claims.ClaimsIdentity(principal.Claims, "ApiKey"));
        foreach (var type in new[] { System.Security.Claims.ClaimTypes.NameIdentifier, System.Security.Claims.ClaimTypes.Name,
            System.Security.Claims.ClaimTypes.Email, System.Security.Claims.ClaimTypes.Role, Accounts.ApiKeyClaims.KeyId,
            System.Security.Claims.ClaimTypes.Role.ToUpperInvariant(), "missing" })
        {
            Assert.Equal(plain.FindFirst(type)?.Value, principal.FindFirst(type)?.Value);
        }
        Assert.Equal(user.UserId, Accounts.CurrentUser.Id(principal));
        Assert.True(principal.Identity?.IsAuthenticated);
        Assert.Equal("ApiKey", principal.Identity?.AuthenticationType);
        Assert.Throws<InvalidOperationException>(() => principal.AddIdentity(new System.Security.Claims.ClaimsIdentity()));
        var identity = Assert.IsAssignableFrom<System.Security.Claims.ClaimsIdentity>(principal.Identity);
        Assert.Throws<InvalidOperationException>(() => identity.AddClaim(new System.Security.Claims.Claim("x", "y")));
        Assert.Throws<InvalidOperationException>(() => identity.RemoveClaim(identity.FindFirst(System.Security.Claims.ClaimTypes.Email)));
    }
}
