using System.Collections.Concurrent;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Jackcwf.Api.Tests;

/// <summary>
/// Every settings class is validated when the host starts, wherever a value comes from: here each bad
/// value is a plain configuration key, as appsettings.json would give it, not an environment variable
/// (those are checked before the host is built). The real Program runs in the test process and stops
/// at its settings check, so no database or listener is needed.
/// </summary>
public sealed class SettingsValidationTests
{
    public static TheoryData<string, string, string, string> BadSettings => new()
    {
        // settings class, key, bad value, what the refusal must name
        { "ServerOptions", "Server:Port", "0", "Server:Port (PORT) must be a whole number between 1 and 65535" },
        { "ShutdownOptions", "Server:DrainDelaySeconds", "-1", "Server:DrainDelaySeconds (SHUTDOWN_DRAIN_DELAY_SECONDS)" },
        { "DatabaseOptions", "Database:Url", "mysql://db/chat", "DATABASE_URL has an unsupported scheme" },
        { "RedisOptions", "Redis:Url", "redis://cache:6379/not-a-number", "REDIS_URL" },
        { "ProvidersOptions", "Providers:TimeoutSeconds", "0", "Providers:TimeoutSeconds (PROVIDER_TIMEOUT_SECONDS)" },
        { "ModelsOptions", "Models:FallbackMap", "openai/gpt-4o", "MODEL_FALLBACKS rule" },
        { "ResilienceOptions", "Resilience:MaxRetries", "11", "Resilience:MaxRetries (PROVIDER_MAX_RETRIES)" },
        { "ResponseCacheOptions", "ResponseCache:Mode", "sometimes", "RESPONSE_CACHE must be off, exact or semantic" },
        { "AccountsOptions", "Accounts:AllowRegistration", "perhaps", "Accounts:AllowRegistration" },
        { "LimitsOptions", "Limits:MaxMessageChars", "0", "Limits:MaxMessageChars (MAX_MESSAGE_CHARS)" },
        { "MonitoringOptions", "Monitoring:HealthCheckTimeoutMs", "1", "Monitoring:HealthCheckTimeoutMs (HEALTH_CHECK_TIMEOUT_MS)" },
        { "BuildOptions", "Build:Version", "1.0 beta", "Build:Version (APP_VERSION)" },
        { "EmbeddingOptions", "Embeddings:MaxInputsPerRequest", "0", "Embeddings:MaxInputsPerRequest (EMBEDDING_MAX_INPUTS)" },
        { "ExternalLoginOptions", "Oidc:Authority", "https://login.example.test/realms/main", "OIDC_AUTHORITY and OIDC_CLIENT_ID must be set together" },
        { "KeyRingOptions", "DataProtection:Key", "c2hvcnQ=", "DATA_PROTECTION_KEY must be base64 of at least 32 random bytes" },
        { "AuthLimitsOptions", "AuthLimits:RequestsPerMinutePerIp", "0", "AuthLimits:RequestsPerMinutePerIp (AUTH_RATE_LIMIT_PER_MINUTE)" },
        { "BackupOptions", "Backup:Keep", "0", "Backup:Keep (BACKUP_KEEP)" },
        { "AuditOptions", "Audit:RetentionDays", "-1", "Audit:RetentionDays (AUDIT_RETENTION_DAYS)" },
        { "ChatSettings", "Chat:LeaseSeconds", "1", "Chat:LeaseSeconds must be a whole number between 2 and 3600" },
    };

    [Theory]
    [MemberData(nameof(BadSettings))]
    public void A_bad_value_of_any_settings_class_stops_start_up_naming_the_setting(string settingsClass, string key, string value, string named)
    {
        var log = new CapturedLog();
        using var factory = new WebApplicationFactory<Program>().WithWebHostBuilder(web =>
        {
            web.UseEnvironment("Production");
            web.ConfigureAppConfiguration(config => config.AddInMemoryCollection(new Dictionary<string, string?>
            {
                // Scheduled backups would probe their folder; the backup case sets its own bad value.
                ["Backup:IntervalHours"] = "0",
                ["Monitoring:Enabled"] = "false",
                [key] = value,
            }));
            web.ConfigureLogging(logging => logging.AddProvider(log));
        });

        try
        {
            // The program refuses before it starts the host; how the factory reports that varies, the log does not.
            _ = factory.Server;
        }
        catch (Exception e) when (e is InvalidOperationException or AggregateException or OperationCanceledException)
        {
        }

        var refusals = log.Messages.Where(m => m.StartsWith("Configuration error: ", StringComparison.Ordinal)).ToList();
        Assert.True(refusals.Any(m => m.Contains(named, StringComparison.Ordinal)),
            $"{settingsClass}: {key}={value} was not refused naming it ({named}); refusals: [{string.Join(" | ", refusals)}]");
    }

    private sealed class CapturedLog : ILoggerProvider
    {
        public ConcurrentQueue<string> Messages { get; } = new();

        public ILogger CreateLogger(string categoryName) => new Logger(Messages);

        public void Dispose()
        {
        }

        private sealed class Logger(ConcurrentQueue<string> messages) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Critical;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (IsEnabled(logLevel))
                {
                    messages.Enqueue(formatter(state, exception));
                }
            }
        }
    }
}
