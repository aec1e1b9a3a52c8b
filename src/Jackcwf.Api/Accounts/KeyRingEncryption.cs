using System.Security.Cryptography;
using System.Xml.Linq;
using Jackcwf.Api.Data;
using Microsoft.AspNetCore.DataProtection.XmlEncryption;
using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Accounts;

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
