using System.Globalization;

namespace Jackcwf.Api.Configuration;

/// <summary>
/// The seed's environment variables (and the few the product adds), mapped onto .NET configuration
/// keys. This table is the single place that knows both names; docs/configuration.md documents it.
/// </summary>
public static class EnvironmentVariables
{
    public enum Kind { Text, Integer, Boolean, Url, Number }

    public sealed record Variable(string Name, string Key, Kind Kind, long Min = 0, long Max = long.MaxValue, bool Secret = false);

    public static readonly IReadOnlyList<Variable> All =
    [
        new("PORT", "Server:Port", Kind.Integer, 1, 65535),
        new("METRICS_PORT", "Server:MetricsPort", Kind.Integer, 1, 65535),
        new("API_REFERENCE_ENABLED", "Server:ApiReferenceEnabled", Kind.Boolean),
        new("UVICORN_WORKERS", "Server:UvicornWorkers", Kind.Integer, 1, 64),
        new("GRACEFUL_SHUTDOWN_TIMEOUT", "Server:GracefulShutdownTimeoutSeconds", Kind.Integer, 0, 3600),
        new("SHUTDOWN_DRAIN_DELAY_SECONDS", "Server:DrainDelaySeconds", Kind.Integer, 0, 600),
        new("MAX_REQUEST_BODY_BYTES", "Server:MaxRequestBodyBytes", Kind.Integer, 1024, 1L << 30),
        new("PUBLIC_BASE_URL", "Server:PublicBaseUrl", Kind.Url),
        new("FORWARDED_TRUSTED_NETWORKS", "Server:ForwardedTrustedNetworks", Kind.Text),
        new("LOG_FORMAT", "Logging:Format", Kind.Text),
        new("LOG_LEVEL", "Logging:LogLevel:Default", Kind.Text),
        new("ACCESS_LOG", "Server:AccessLog", Kind.Boolean),
        new("DATABASE_URL", "Database:Url", Kind.Text, Secret: true),
        new("MIGRATE_ON_STARTUP", "Database:MigrateOnStartup", Kind.Boolean),
        new("BACKUP_INTERVAL_HOURS", "Backup:IntervalHours", Kind.Number, 0, 8760),
        new("BACKUP_KEEP", "Backup:Keep", Kind.Integer, 1, 10_000),
        new("BACKUP_DIR", "Backup:Directory", Kind.Text),
        new("REDIS_URL", "Redis:Url", Kind.Text, Secret: true),
        new("OPENAI_API_KEY", "Providers:OpenAI:ApiKey", Kind.Text, Secret: true),
        new("OPENAI_BASE_URL", "Providers:OpenAI:BaseUrl", Kind.Url),
        new("ANTHROPIC_API_KEY", "Providers:Anthropic:ApiKey", Kind.Text, Secret: true),
        new("ANTHROPIC_BASE_URL", "Providers:Anthropic:BaseUrl", Kind.Url),
        new("OLLAMA_BASE_URL", "Providers:Ollama:BaseUrl", Kind.Url),
        new("OLLAMA_API_KEY", "Providers:Ollama:ApiKey", Kind.Text, Secret: true),
        new("OLLAMA_MODELS", "Providers:Ollama:Models", Kind.Text),
        new("DEFAULT_MODEL", "Models:Default", Kind.Text),
        new("EMBEDDING_MODEL", "Embeddings:Model", Kind.Text),
        new("EMBEDDING_MAX_INPUTS", "Embeddings:MaxInputsPerRequest", Kind.Integer, 1, 2048),
        new("VECTOR_STORE_MAX_RECORDS", "Embeddings:VectorStoreMaxRecordsPerCollection", Kind.Integer, 1, 10_000_000),
        new("DEMO_CHUNK_DELAY_MS", "Providers:Demo:ChunkDelayMs", Kind.Integer, 0, 60_000),
        new("PROVIDER_TIMEOUT_SECONDS", "Providers:TimeoutSeconds", Kind.Integer, 1, 3600),
        new("PROVIDER_MAX_RETRIES", "Resilience:MaxRetries", Kind.Integer, 0, 10),
        new("PROVIDER_MAX_RETRY_AFTER_SECONDS", "Resilience:MaxRetryAfterSeconds", Kind.Integer, 0, 600),
        new("PROVIDER_FIRST_TOKEN_TIMEOUT_SECONDS", "Resilience:FirstTokenTimeoutSeconds", Kind.Integer, 1, 3600),
        new("PROVIDER_IDLE_TIMEOUT_SECONDS", "Resilience:IdleTimeoutSeconds", Kind.Integer, 1, 3600),
        new("CIRCUIT_BREAKER_FAILURE_RATIO", "Resilience:CircuitFailureRatio", Kind.Number, 0, 1),
        new("CIRCUIT_BREAKER_MINIMUM_THROUGHPUT", "Resilience:CircuitMinimumThroughput", Kind.Integer, 2, 100_000),
        new("CIRCUIT_BREAKER_SAMPLING_SECONDS", "Resilience:CircuitSamplingSeconds", Kind.Integer, 1, 3600),
        new("CIRCUIT_BREAKER_BREAK_SECONDS", "Resilience:CircuitBreakSeconds", Kind.Integer, 1, 3600),
        new("MODEL_FALLBACKS", "Models:FallbackMap", Kind.Text),
        new("RESPONSE_CACHE", "ResponseCache:Mode", Kind.Text),
        new("RESPONSE_CACHE_TTL_SECONDS", "ResponseCache:TtlSeconds", Kind.Integer, 1, 31_536_000),
        new("RESPONSE_CACHE_LOCAL_MB", "ResponseCache:LocalMegabytes", Kind.Integer, 1, 1_000_000),
        new("SEMANTIC_CACHE_THRESHOLD", "ResponseCache:SemanticThreshold", Kind.Number, 0, 1),
        new("RESPONSE_CACHE_SCOPE", "ResponseCache:Scope", Kind.Text),
        new("ALLOW_REGISTRATION", "Accounts:AllowRegistration", Kind.Boolean),
        new("AUTH_RATE_LIMIT_PER_MINUTE", "AuthLimits:RequestsPerMinutePerIp", Kind.Integer, 1, 1_000_000),
        new("AUTH_FAILED_SIGNINS_PER_IP", "AuthLimits:FailedSignInsPerIp", Kind.Integer, 1, 100_000),
        new("AUTH_FAILED_SIGNINS_PER_ACCOUNT", "AuthLimits:FailedSignInsPerAccount", Kind.Integer, 1, 1_000_000),
        new("AUTH_REGISTRATIONS_PER_HOUR", "AuthLimits:RegistrationsPerHourPerIp", Kind.Integer, 1, 1_000_000),
        new("AUTH_EMAILS_PER_HOUR", "AuthLimits:EmailsPerHourPerAccount", Kind.Integer, 1, 1_000_000),
        new("API_KEY_FAILURES_PER_MINUTE", "AuthLimits:FailedApiKeysPerMinutePerIp", Kind.Integer, 1, 1_000_000),
        new("DATA_PROTECTION_KEY", "DataProtection:Key", Kind.Text, Secret: true),
        new("DATA_PROTECTION_PREVIOUS_KEYS", "DataProtection:PreviousKeys", Kind.Text, Secret: true),
        new("OIDC_AUTHORITY", "Oidc:Authority", Kind.Url),
        new("OIDC_CLIENT_ID", "Oidc:ClientId", Kind.Text),
        new("OIDC_CLIENT_SECRET", "Oidc:ClientSecret", Kind.Text, Secret: true),
        new("OIDC_DISPLAY_NAME", "Oidc:DisplayName", Kind.Text),
        new("OIDC_SCOPES", "Oidc:Scopes", Kind.Text),
        new("OIDC_CALLBACK_PATH", "Oidc:CallbackPath", Kind.Text),
        new("MAX_MESSAGE_CHARS", "Limits:MaxMessageChars", Kind.Integer, 1, 10_000_000),
        new("RATE_LIMIT_USER_PER_MINUTE", "Limits:RequestsPerMinutePerUser", Kind.Integer, 1, 1_000_000),
        new("RATE_LIMIT_KEY_PER_MINUTE", "Limits:RequestsPerMinutePerKey", Kind.Integer, 1, 1_000_000),
        new("MAX_CONCURRENT_GENERATIONS", "Limits:MaxConcurrentGenerationsPerUser", Kind.Integer, 1, 10_000),
        new("USAGE_FLUSH_INTERVAL_MS", "Usage:FlushIntervalMs", Kind.Integer, 10, 600_000),
        new("USAGE_FLUSH_BATCH_ROWS", "Usage:FlushBatchRows", Kind.Integer, 1, 2000),
        new("DEFAULT_MONTHLY_BUDGET_USD", "Limits:DefaultMonthlyBudgetUsd", Kind.Number, 0, 100_000_000),
        new("MAX_OUTPUT_TOKENS", "Limits:MaxOutputTokens", Kind.Integer, 1, 1_000_000),
        new("MAX_MESSAGES_PER_CONVERSATION", "Limits:MaxMessagesPerConversation", Kind.Integer, 2, 1_000_000),
        new("MAX_STORED_CHARS_PER_USER", "Limits:MaxStoredCharsPerUser", Kind.Integer, 1000, 1L << 40),
        new("CONTEXT_MAX_MESSAGES", "Limits:ContextMaxMessages", Kind.Integer, 0, 100_000),
        new("CONTEXT_MAX_CHARS", "Limits:ContextMaxChars", Kind.Integer, 0, 100_000_000),
        new("MAX_CONCURRENT_STREAMS", "Limits:MaxConcurrentStreamsPerUser", Kind.Integer, 1, 10_000),
        new("SEARCH_MAX_MESSAGES", "Limits:SearchMaxMessages", Kind.Integer, 0, 10_000_000),
        new("FILE_MAX_BYTES", "Files:MaxBytes", Kind.Integer, 1024, 1L << 30),
        new("FILES_QUOTA_BYTES", "Files:QuotaBytesPerUser", Kind.Integer, 1024, 1L << 40),
        new("FILES_MAX_PER_USER", "Files:MaxFilesPerUser", Kind.Integer, 1, 1_000_000),
        new("FILES_TOP_K", "Files:TopK", Kind.Integer, 1, 50),
        new("FILES_CHUNK_CHARS", "Files:ChunkChars", Kind.Integer, 100, 100_000),
        new("FILES_CHUNK_OVERLAP_CHARS", "Files:ChunkOverlapChars", Kind.Integer, 0, 50_000),
        new("FILES_MAX_CHUNKS", "Files:MaxChunksPerFile", Kind.Integer, 1, 1_000_000),
        new("FILES_MAX_PER_CONVERSATION", "Files:MaxFilesPerConversation", Kind.Integer, 1, 1000),
        new("MAX_FOLDERS_PER_USER", "Limits:MaxFoldersPerUser", Kind.Integer, 0, 100_000),
        new("MAX_SAVED_PROMPTS_PER_USER", "Limits:MaxSavedPromptsPerUser", Kind.Integer, 0, 100_000),
        new("AUDIT_RETENTION_DAYS", "Audit:RetentionDays", Kind.Integer, 0, 36_500),
        new("ENABLE_MONITORING", "Monitoring:Enabled", Kind.Boolean),
        new("MONITORING_INTERVAL_SECONDS", "Monitoring:IntervalSeconds", Kind.Integer, 1, 86_400),
        new("HEALTH_CHECK_TIMEOUT_MS", "Monitoring:HealthCheckTimeoutMs", Kind.Integer, 50, 600_000),
        new("APP_VERSION", "Build:Version", Kind.Text),
        new("GIT_COMMIT", "Build:Commit", Kind.Text),
    ];

    /// <summary>
    /// Copies the set variables into configuration (so they win over appsettings) and returns one
    /// message per invalid value, each naming the variable.
    /// </summary>
    public static List<string> Apply(IConfigurationBuilder configuration, Func<string, string?> read)
    {
        var errors = new List<string>();
        var values = new Dictionary<string, string?>();
        foreach (var v in All)
        {
            var raw = read(v.Name);
            if (raw is null)
            {
                continue;
            }
            raw = raw.Trim();
            if (Problem(v, v.Name, raw, out raw) is { } problem)
            {
                errors.Add(problem);
                continue;
            }
            if (raw.Length > 0)
            {
                values[v.Key] = raw;
            }
        }
        configuration.AddInMemoryCollection(values);
        return errors;
    }

    /// <summary>
    /// Why <paramref name="raw"/> is no valid value of <paramref name="v"/> (a sentence starting with
    /// <paramref name="subject"/>), or null with the value in its normal form. The same rule checks
    /// environment variables here and every bound options class at start (<see cref="VariableRangeValidator{TOptions}"/>).
    /// </summary>
    public static string? Problem(Variable v, string subject, string raw, out string normalized)
    {
        normalized = raw;
        var shown = v.Secret ? "(hidden)" : $"\"{raw}\"";
        switch (v.Kind)
        {
            case Kind.Integer:
                if (!long.TryParse(raw, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) || n < v.Min || n > v.Max)
                {
                    return $"{subject} must be a whole number between {v.Min} and {v.Max} (got {shown}).";
                }
                break;
            case Kind.Boolean:
                if (ParseBool(raw) is not { } b)
                {
                    return $"{subject} must be true or false (got {shown}).";
                }
                normalized = b ? "true" : "false";
                break;
            case Kind.Number:
                if (!decimal.TryParse(raw, NumberStyles.Number, CultureInfo.InvariantCulture, out var d) || d < v.Min || d > v.Max)
                {
                    return $"{subject} must be a number between {v.Min} and {v.Max} (got {shown}).";
                }
                break;
            case Kind.Url:
                if (raw.Length > 0 && (!Uri.TryCreate(raw, UriKind.Absolute, out var u) || (u.Scheme != "http" && u.Scheme != "https")))
                {
                    return $"{subject} must be an absolute http(s) URL (got {shown}).";
                }
                break;
        }
        return null;
    }

    public static bool? ParseBool(string raw) => raw.ToLowerInvariant() switch
    {
        "true" or "1" or "yes" or "on" => true,
        "false" or "0" or "no" or "off" => false,
        _ => null,
    };

    public static string NameOf(string key) => All.FirstOrDefault(v => v.Key == key)?.Name ?? key;
}
