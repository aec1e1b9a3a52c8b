using Jackcwf.Api.Sharing;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Jackcwf.Api.Data.EntityConfigurations;

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
