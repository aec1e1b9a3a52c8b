using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Ai.Pipeline;

public sealed class ResponseCacheOptions
{
    public const string Section = "ResponseCache";
    public const string Off = "off";
    public const string Exact = "exact";
    public const string Semantic = "semantic";
    public string Mode { get; set; } = Off;
    public int TtlSeconds { get; set; } = 3600;
    /// <summary>
    /// Megabytes of cached answers each replica keeps in its own memory (HybridCache's first level), the least
    /// recently used leaving first; Redis, when configured, keeps them for every replica for <see cref="TtlSeconds"/>.
    /// </summary>
    public int LocalMegabytes { get; set; } = 64;
    public double SemanticThreshold { get; set; } = 0.9;
    /// <summary><c>user</c> (default: answers are never shared between users) or <c>global</c>.</summary>
    public string Scope { get; set; } = "user";
    public bool GlobalScope => Scope == "global";
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
