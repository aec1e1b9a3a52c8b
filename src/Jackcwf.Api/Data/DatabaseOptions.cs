using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Data;

public sealed class DatabaseOptions
{
    public const string Section = "Database";
    public const string UrlKey = $"{Section}:{nameof(Url)}";
    /// <summary><c>DATABASE_URL</c>; unset means SQLite in <c>./data</c>.</summary>
    public string? Url { get; set; }
    public bool MigrateOnStartup { get; set; } = true;
}

/// <summary>The URL must parse; the parser's messages name DATABASE_URL and never repeat its password.</summary>
internal sealed class ValidateDatabaseOptions : IValidateOptions<DatabaseOptions>
{
    public ValidateOptionsResult Validate(string? name, DatabaseOptions options)
    {
        try
        {
            _ = DatabaseConnection.Parse(options.Url, Directory.GetCurrentDirectory());
            return ValidateOptionsResult.Success;
        }
        catch (FormatException e)
        {
            return ValidateOptionsResult.Fail($"Database:Url: {e.Message}");
        }
    }
}
