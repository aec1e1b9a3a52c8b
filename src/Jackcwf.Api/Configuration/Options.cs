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
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

internal static class OptionsRegistration
{
    public static IHostApplicationBuilder AddJackcwfOptions(this IHostApplicationBuilder builder)
    {
        var s = builder.Services;
        s.AddOptions<ServerOptions>().BindConfiguration(ServerOptions.Section).ValidateOnStart();
        s.AddOptions<DatabaseOptions>().BindConfiguration(DatabaseOptions.Section).ValidateOnStart();
        s.AddOptions<RedisOptions>().BindConfiguration(RedisOptions.Section);
        s.AddOptions<ProvidersOptions>().BindConfiguration(ProvidersOptions.Section);
        s.AddOptions<ModelsOptions>().BindConfiguration(ModelsOptions.Section).ValidateOnStart();
        s.AddSingleton<IValidateOptions<ModelsOptions>, ValidateModelsOptions>();
        s.AddOptions<AccountsOptions>().BindConfiguration(AccountsOptions.Section);
        s.AddOptions<LimitsOptions>().BindConfiguration(LimitsOptions.Section);
        s.AddOptions<MonitoringOptions>().BindConfiguration(MonitoringOptions.Section);
        s.AddOptions<BuildOptions>().BindConfiguration(BuildOptions.Section);
        return builder;
    }
}
