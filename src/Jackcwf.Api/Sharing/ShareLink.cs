namespace Jackcwf.Api.Sharing;

/// <summary>
/// A read-only snapshot of one branch of a conversation, readable by anyone holding the token.
/// The token is kept as is (not hashed) so the owner can copy the link again: it unlocks only
/// text the owner chose to publish, which the same database row already holds.
/// </summary>
public sealed class ShareLink
{
    public Guid Id { get; set; }
    public Guid UserId { get; set; }
    public Guid ConversationId { get; set; }
    public string Token { get; set; } = "";
    public string Title { get; set; } = "";
    /// <summary>The <see cref="SharedConversation"/> as JSON: frozen when the link is created.</summary>
    public string Snapshot { get; set; } = "";
    public DateTime CreatedAt { get; set; }
}
