namespace Jackcwf.Api.Data;

/// <summary>
/// Characters of message text a user stores, kept by database triggers on <c>messages</c> (insert,
/// update of the text, delete, cascades included), so every writer, old releases too, keeps it right
/// and the storage cap never has to add up a user's messages.
/// </summary>
public sealed class UserStorage
{
    public Guid UserId { get; set; }
    public long StoredChars { get; set; }
}
