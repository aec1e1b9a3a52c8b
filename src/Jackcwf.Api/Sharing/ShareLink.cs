using Jackcwf.Api.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

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

internal sealed class ShareLinkConfiguration : IEntityTypeConfiguration<ShareLink>
{
    public void Configure(EntityTypeBuilder<ShareLink> e)
    {
        e.ToTable("share_links");
        e.HasKey(s => s.Id);
        e.Property(s => s.Token).HasMaxLength(64);
        e.Property(s => s.Title).HasMaxLength(200);
        e.HasIndex(s => s.Token).IsUnique();
        // One link per conversation: sharing again refreshes the snapshot behind the same link.
        e.HasIndex(s => s.ConversationId).IsUnique();
        e.HasIndex(s => s.UserId);
        e.HasOne<AppUser>().WithMany().HasForeignKey(s => s.UserId).OnDelete(DeleteBehavior.Cascade);
        e.HasOne<Conversation>().WithMany().HasForeignKey(s => s.ConversationId).OnDelete(DeleteBehavior.Cascade);
    }
}
