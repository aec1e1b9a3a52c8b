using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Configuration;

public sealed class ServerOptions
{
    public const string Section = "Server";
    public int Port { get; set; } = 8080;
    /// <summary>When set, <c>/metrics</c> is served on this port only (never on <see cref="Port"/>).</summary>
    public int? MetricsPort { get; set; }
    /// <summary>Serves <c>/openapi</c> and <c>/scalar</c>; unset means on in Development only.</summary>
    public bool? ApiReferenceEnabled { get; set; }
    public int? UvicornWorkers { get; set; }
    public int GracefulShutdownTimeoutSeconds { get; set; } = 30;
    public int DrainDelaySeconds { get; set; } = 5;
    public long MaxRequestBodyBytes { get; set; } = 1024 * 1024;
    public string? PublicBaseUrl { get; set; }
    /// <summary>Comma-separated CIDR networks whose X-Forwarded-* headers are believed; see <see cref="Web.ForwardedNetworks"/>.</summary>
    public string? ForwardedTrustedNetworks { get; set; }
    /// <summary>Log every request at Information (an access log); otherwise only failed ones, successful ones at Debug.</summary>
    public bool AccessLog { get; set; }
}

public sealed class DatabaseOptions
{
    public const string Section = "Database";
    public string? Url { get; set; }
    public bool MigrateOnStartup { get; set; } = true;
}

public sealed class RedisOptions
{
    public const string Section = "Redis";
    public string? Url { get; set; }
}

public sealed class ProviderEndpointOptions
{
    public string? ApiKey { get; set; }
    public string? BaseUrl { get; set; }
    public string? Models { get; set; }
}

public sealed class DemoProviderOptions
{
    public int ChunkDelayMs { get; set; } = 25;
}

public sealed class ProvidersOptions
{
    public const string Section = "Providers";
    public ProviderEndpointOptions OpenAI { get; set; } = new();
    public ProviderEndpointOptions Anthropic { get; set; } = new();
    public ProviderEndpointOptions Ollama { get; set; } = new();
    public DemoProviderOptions Demo { get; set; } = new();
    public int TimeoutSeconds { get; set; } = 120;
}

public sealed class ModelEntry
{
    public string Id { get; set; } = "";
    /// <summary>Models tried in order when this one fails before its first token or its circuit is open.</summary>
    public List<string> Fallbacks { get; set; } = [];
    public string? DisplayName { get; set; }
    public decimal InputPricePerMillionTokens { get; set; }
    public decimal OutputPricePerMillionTokens { get; set; }
    public int? MaxOutputTokens { get; set; }
}

public sealed class ModelsOptions
{
    public const string Section = "Models";
    public string? Default { get; set; }
    public List<ModelEntry> Catalog { get; set; } = [];
    /// <summary><c>MODEL_FALLBACKS</c>: <c>model=fallback1,fallback2;model2=…</c>, added to each model's <see cref="ModelEntry.Fallbacks"/>.</summary>
    public string? FallbackMap { get; set; }

    /// <summary>Fallbacks per model id from the catalogue and <see cref="FallbackMap"/> (the map's come first).</summary>
    public Dictionary<string, List<string>> FallbacksByModel()
    {
        var result = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var rule in (FallbackMap ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = rule.IndexOf('=');
            if (eq > 0)
            {
                result[rule[..eq].Trim()] = [.. rule[(eq + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
            }
        }
        foreach (var m in Catalog.Where(m => m.Fallbacks.Count > 0))
        {
            var list = result.TryGetValue(m.Id, out var l) ? l : result[m.Id] = [];
            list.AddRange(m.Fallbacks.Where(f => !list.Contains(f)));
        }
        return result;
    }
}

/// <summary>Retries, circuit breakers and timeouts of provider calls (defaults in docs/configuration.md).</summary>
public sealed class ResilienceOptions
{
    public const string Section = "Resilience";
    public int MaxRetries { get; set; } = 2;
    public int RetryBaseDelayMs { get; set; } = 500;
    /// <summary>A provider's Retry-After longer than this is not waited for.</summary>
    public int MaxRetryAfterSeconds { get; set; } = 10;
    public int FirstTokenTimeoutSeconds { get; set; } = 60;
    public int IdleTimeoutSeconds { get; set; } = 30;
    public double CircuitFailureRatio { get; set; } = 0.5;
    public int CircuitMinimumThroughput { get; set; } = 10;
    public int CircuitSamplingSeconds { get; set; } = 30;
    public int CircuitBreakSeconds { get; set; } = 30;
}

public sealed class ResponseCacheOptions
{
    public const string Section = "ResponseCache";
    public const string Off = "off";
    public const string Exact = "exact";
    public const string Semantic = "semantic";
    public string Mode { get; set; } = Off;
    public int TtlSeconds { get; set; } = 3600;
    public double SemanticThreshold { get; set; } = 0.9;
    /// <summary><c>user</c> (default: answers are never shared between users) or <c>global</c>.</summary>
    public string Scope { get; set; } = "user";
    public bool GlobalScope => Scope == "global";
}

public sealed class AccountsOptions
{
    public const string Section = "Accounts";
    public bool AllowRegistration { get; set; } = true;
}

public sealed class LimitsOptions
{
    public const string Section = "Limits";
    public int MaxMessageChars { get; set; } = 100_000;
    public int RequestsPerMinutePerUser { get; set; } = 300;
    public int RequestsPerMinutePerKey { get; set; } = 300;
    public int MaxConcurrentGenerationsPerUser { get; set; } = 4;
    /// <summary>Default monthly spending limit (US dollars) for users without their own; null means unlimited.</summary>
    public decimal? DefaultMonthlyBudgetUsd { get; set; }
    public int MaxOutputTokens { get; set; } = 4096;
    /// <summary>Messages (user and assistant, every branch) one conversation may hold.</summary>
    public int MaxMessagesPerConversation { get; set; } = 1000;
    /// <summary>Characters of message text one account may store across all its conversations.</summary>
    public long MaxStoredCharsPerUser { get; set; } = 50_000_000;
    /// <summary>At most this many earlier messages of the branch are sent to the model (newest first; the system prompt is always sent).</summary>
    public int ContextMaxMessages { get; set; } = 50;
    /// <summary>At most this many characters of earlier messages are sent to the model.</summary>
    public int ContextMaxChars { get; set; } = 200_000;
    /// <summary>Server-Sent Event streams (new answers and resumes) one account may hold open at once, across replicas.</summary>
    public int MaxConcurrentStreamsPerUser { get; set; } = 8;
    /// <summary>Search looks at the text of this many of the account's newest messages (titles: all conversations).</summary>
    public int SearchMaxMessages { get; set; } = 5000;
    /// <summary>Folders one account may have.</summary>
    public int MaxFoldersPerUser { get; set; } = 100;
    /// <summary>Saved prompts one account may keep.</summary>
    public int MaxSavedPromptsPerUser { get; set; } = 200;
}

public sealed class MonitoringOptions
{
    public const string Section = "Monitoring";
    public bool Enabled { get; set; } = true;
    public int IntervalSeconds { get; set; } = 10;
    public int HealthCheckTimeoutMs { get; set; } = 2000;
}

public sealed class BuildOptions
{
    public const string Section = "Build";
    public string? Version { get; set; }
    public string? Commit { get; set; }
}

/// <summary>Cross-field rules the per-variable parsing cannot see; messages name the variable.</summary>
internal sealed class ValidateModelsOptions : IValidateOptions<ModelsOptions>
{
    public ValidateOptionsResult Validate(string? name, ModelsOptions options)
    {
        var errors = new List<string>();
        foreach (var m in options.Catalog)
        {
            if (m.Id.Split('/') is not [{ Length: > 0 }, { Length: > 0 }])
            {
                errors.Add($"Models:Catalog entry \"{m.Id}\" must be named provider/model.");
            }
            if (m.InputPricePerMillionTokens < 0 || m.OutputPricePerMillionTokens < 0)
            {
                errors.Add($"Models:Catalog entry \"{m.Id}\" has a negative price.");
            }
        }
        if (options.FallbackMap is { Length: > 0 } map
            && map.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault(r => r.IndexOf('=') <= 0) is { } bad)
        {
            errors.Add($"MODEL_FALLBACKS rule \"{bad}\" must be model=fallback1,fallback2 (rules separated by ';').");
        }
        foreach (var (model, fallbacks) in options.FallbacksByModel())
        {
            foreach (var f in fallbacks.Prepend(model).Where(f => f.Split('/') is not [{ Length: > 0 }, { Length: > 0 }]))
            {
                errors.Add($"Fallback rule for \"{model}\": \"{f}\" must be named provider/model.");
            }
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

internal sealed class ValidateResponseCacheOptions : IValidateOptions<ResponseCacheOptions>
{
    public ValidateOptionsResult Validate(string? name, ResponseCacheOptions options)
    {
        var errors = new List<string>();
        if (options.Mode is not (ResponseCacheOptions.Off or ResponseCacheOptions.Exact or ResponseCacheOptions.Semantic))
        {
            errors.Add($"RESPONSE_CACHE must be off, exact or semantic (got \"{options.Mode}\").");
        }
        if (options.Scope is not ("user" or "global"))
        {
            errors.Add($"RESPONSE_CACHE_SCOPE must be user or global (got \"{options.Scope}\").");
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

internal static class OptionsRegistration
{
    public static IHostApplicationBuilder AddJackcwfOptions(this IHostApplicationBuilder builder)
    {
        var s = builder.Services;
        s.AddOptions<ServerOptions>().BindConfiguration(ServerOptions.Section).ValidateOnStart();
        s.AddSingleton<IValidateOptions<ServerOptions>, Web.ValidateForwardedNetworks>();
        s.AddOptions<DatabaseOptions>().BindConfiguration(DatabaseOptions.Section).ValidateOnStart();
        s.AddOptions<RedisOptions>().BindConfiguration(RedisOptions.Section);
        s.AddOptions<ProvidersOptions>().BindConfiguration(ProvidersOptions.Section);
        s.AddOptions<ModelsOptions>().BindConfiguration(ModelsOptions.Section).ValidateOnStart();
        s.AddSingleton<IValidateOptions<ModelsOptions>, ValidateModelsOptions>();
        s.AddOptions<ResilienceOptions>().BindConfiguration(ResilienceOptions.Section);
        s.AddOptions<ResponseCacheOptions>().BindConfiguration(ResponseCacheOptions.Section).ValidateOnStart();
        s.AddSingleton<IValidateOptions<ResponseCacheOptions>, ValidateResponseCacheOptions>();
        s.AddOptions<AccountsOptions>().BindConfiguration(AccountsOptions.Section);
        s.AddOptions<LimitsOptions>().BindConfiguration(LimitsOptions.Section);
        s.AddOptions<MonitoringOptions>().BindConfiguration(MonitoringOptions.Section);
        s.AddOptions<BuildOptions>().BindConfiguration(BuildOptions.Section);
        return builder;
    }
}
