using Jackcwf.Api.Configuration;
using Jackcwf.Api.Data;
using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Accounts;

/// <summary>The key that encrypts the Data Protection key ring at rest (DATA_PROTECTION_KEY and DATA_PROTECTION_PREVIOUS_KEYS).</summary>
public sealed class KeyRingOptions
{
    public const string Section = "DataProtection";

    /// <summary>Base64 of at least 32 random bytes; new keys of the ring are encrypted with it.</summary>
    public string? Key { get; set; }

    /// <summary>Earlier values of <see cref="Key"/> (comma-separated), still accepted to read keys they encrypted.</summary>
    public string? PreviousKeys { get; set; }

    public IReadOnlyList<byte[]> DecryptionKeys =>
        [.. new[] { Key }.Concat((PreviousKeys ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .Where(k => !string.IsNullOrWhiteSpace(k)).Select(k => KeyRingCipher.Parse(k!)).OfType<byte[]>()];
}

internal sealed class ValidateKeyRingOptions(IHostEnvironment environment, DatabaseConnection database) : IValidateOptions<KeyRingOptions>
{
    public ValidateOptionsResult Validate(string? name, KeyRingOptions o)
    {
        var key = EnvironmentVariables.NameOf($"{KeyRingOptions.Section}:{nameof(o.Key)}");
        var previous = EnvironmentVariables.NameOf($"{KeyRingOptions.Section}:{nameof(o.PreviousKeys)}");
        var errors = new List<string>();
        if (!string.IsNullOrWhiteSpace(o.Key) && KeyRingCipher.Parse(o.Key) is null)
        {
            errors.Add($"{key} must be base64 of at least 32 random bytes: generate one with `openssl rand -base64 32`.");
        }
        foreach (var k in (o.PreviousKeys ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (KeyRingCipher.Parse(k) is null)
            {
                errors.Add($"{previous} must list earlier values of {key} (base64, comma-separated); one entry is not valid base64 of 32 bytes or more.");
            }
        }
        if (!string.IsNullOrWhiteSpace(o.PreviousKeys) && string.IsNullOrWhiteSpace(o.Key))
        {
            errors.Add($"{previous} is set without {key}: set the new key in {key}.");
        }
        // Several replicas share the ring through PostgreSQL: a dump of it must not let anyone forge sessions.
        if (string.IsNullOrWhiteSpace(o.Key) && database.Provider == DatabaseProvider.PostgreSql && !environment.IsDevelopment())
        {
            errors.Add($"{key} is required in production with PostgreSQL: it encrypts the session-signing key ring stored in the database. "
                + "Generate one with `openssl rand -base64 32` and keep it in a secret (see docs/security.md).");
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
