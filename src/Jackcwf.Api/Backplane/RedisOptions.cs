using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Backplane;

/// <summary><c>REDIS_URL</c>: unset means one replica with in-process signals; see <see cref="BackplaneExtensions"/>.</summary>
public sealed class RedisOptions
{
    public const string Section = "Redis";
    public const string UrlKey = $"{Section}:{nameof(Url)}";
    public string? Url { get; set; }

    public bool IsEnabled => !string.IsNullOrWhiteSpace(Url);
}

/// <summary>The URL must parse; the parser's messages name REDIS_URL and never repeat its password.</summary>
internal sealed class ValidateRedisOptions : IValidateOptions<RedisOptions>
{
    public ValidateOptionsResult Validate(string? name, RedisOptions options)
    {
        if (!options.IsEnabled)
        {
            return ValidateOptionsResult.Success;
        }
        try
        {
            _ = RedisUrl.Parse(options.Url!);
            return ValidateOptionsResult.Success;
        }
        catch (FormatException e)
        {
            return ValidateOptionsResult.Fail($"Redis:Url: {e.Message}");
        }
    }
}
