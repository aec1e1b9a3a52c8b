using System.Security.Cryptography;
using System.Xml.Linq;
using Jackcwf.Api.Configuration;
using Jackcwf.Api.Data;
using Microsoft.AspNetCore.DataProtection.XmlEncryption;
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

/// <summary>
/// AES-256-GCM for the key ring's XML. ASP.NET Core ships XML encryptors only for certificates and
/// Windows DPAPI; a symmetric key from a secret is what Compose and Kubernetes hand out most simply,
/// hence this small pair (the encryption itself is the framework's <see cref="AesGcm"/>).
/// </summary>
internal static class KeyRingCipher
{
    public static readonly XNamespace Ns = "https://jackcwf.dev/dataprotection/v1";

    public static byte[]? Parse(string value)
    {
        try
        {
            var raw = Convert.FromBase64String(value.Trim());
            // Any length of at least 32 bytes, folded to the 256-bit AES key.
            return raw.Length >= 32 ? SHA256.HashData(raw) : null;
        }
        catch (FormatException)
        {
            return null;
        }
    }

    /// <summary>Names the key without revealing it, so decryption picks the right one after a rotation.</summary>
    public static string Id(byte[] key) => Convert.ToHexString(SHA256.HashData([.. "jackcwf-key-id"u8, .. key]))[..16];
}

internal sealed class KeyRingXmlEncryptor(byte[] key) : IXmlEncryptor
{
    public EncryptedXmlInfo Encrypt(XElement plaintextElement)
    {
        var plain = System.Text.Encoding.UTF8.GetBytes(plaintextElement.ToString(SaveOptions.DisableFormatting));
        var nonce = RandomNumberGenerator.GetBytes(AesGcm.NonceByteSizes.MaxSize);
        var tag = new byte[AesGcm.TagByteSizes.MaxSize];
        var cipher = new byte[plain.Length];
        using (var aes = new AesGcm(key, tag.Length))
        {
            aes.Encrypt(nonce, plain, cipher, tag);
        }
        CryptographicOperations.ZeroMemory(plain);
        var element = new XElement(KeyRingCipher.Ns + "encryptedKey",
            new XAttribute("keyId", KeyRingCipher.Id(key)),
            new XElement(KeyRingCipher.Ns + "value", Convert.ToBase64String([.. nonce, .. tag, .. cipher])));
        return new EncryptedXmlInfo(element, typeof(KeyRingXmlDecryptor));
    }
}

internal sealed class KeyRingXmlDecryptor(IServiceProvider services) : IXmlDecryptor
{
    public XElement Decrypt(XElement encryptedElement)
    {
        var keyId = encryptedElement.Attribute("keyId")?.Value;
        var key = services.GetRequiredService<IOptions<KeyRingOptions>>().Value.DecryptionKeys.FirstOrDefault(k => KeyRingCipher.Id(k) == keyId)
            ?? throw new CryptographicException(
                $"A Data Protection key was encrypted with a key ({keyId}) that is neither DATA_PROTECTION_KEY nor in DATA_PROTECTION_PREVIOUS_KEYS.");
        var data = Convert.FromBase64String(encryptedElement.Element(KeyRingCipher.Ns + "value")?.Value ?? "");
        var nonceSize = AesGcm.NonceByteSizes.MaxSize;
        var tagSize = AesGcm.TagByteSizes.MaxSize;
        var plain = new byte[data.Length - nonceSize - tagSize];
        using (var aes = new AesGcm(key, tagSize))
        {
            aes.Decrypt(data.AsSpan(0, nonceSize), data.AsSpan(nonceSize + tagSize), data.AsSpan(nonceSize, tagSize), plain);
        }
        return XElement.Parse(System.Text.Encoding.UTF8.GetString(plain));
    }
}
