using System.Security.Cryptography;
using System.Text;
using Npgsql;

namespace Jackcwf.Testing;

/// <summary>
/// What a restore drill compares before and after: the count and SHA-256 of every message's id,
/// conversation, role, status and content, in id order (so one changed byte, a missing or an extra
/// message shows).
/// </summary>
public static class MessagesDigest
{
    public static async Task<string> ComputeAsync(NpgsqlConnection connection, CancellationToken cancellationToken = default)
    {
        await using var command = new NpgsqlCommand(
            "SELECT \"Id\"::text, \"ConversationId\"::text, \"Role\", \"Status\", \"Content\" FROM messages ORDER BY \"Id\"", connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var count = 0;
        while (await reader.ReadAsync(cancellationToken))
        {
            count++;
            for (var i = 0; i < 5; i++)
            {
                var value = reader.GetString(i);
                sha.AppendData(Encoding.UTF8.GetBytes($"{value.Length}:{value}|"));
            }
        }
        return $"{count} messages, sha256 {Convert.ToHexStringLower(sha.GetHashAndReset())[..16]}";
    }
}
