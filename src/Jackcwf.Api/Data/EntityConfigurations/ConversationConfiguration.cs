using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Jackcwf.Api.Data.EntityConfigurations;

internal sealed class ConversationConfiguration : IEntityTypeConfiguration<Conversation>
{
    public void Configure(EntityTypeBuilder<Conversation> e)
    {
        e.ToTable("conversations");
        e.HasKey(c => c.Id);
        e.Property(c => c.Title).HasMaxLength(200);
        e.Property(c => c.Model).HasMaxLength(200);
        e.HasIndex(c => new { c.UserId, c.UpdatedAt });
        // The list: one user's archived or current conversations, pinned first, newest first.
        e.HasIndex(c => new { c.UserId, c.Archived, c.Pinned, c.UpdatedAt });
        // Database defaults, so the previous release (which does not know these columns) can still insert.
        e.Property(c => c.Pinned).HasDefaultValue(false);
        e.Property(c => c.Archived).HasDefaultValue(false);
        // A deleted folder lets its conversations go (never deletes them), in the database itself, so a
        // conversation moved into a folder while it is deleted cannot keep pointing at it.
        e.HasOne<Folders.Folder>().WithMany().HasForeignKey(c => c.FolderId).OnDelete(DeleteBehavior.SetNull);
        e.HasMany(c => c.Messages).WithOne().HasForeignKey(m => m.ConversationId).OnDelete(DeleteBehavior.Cascade);
        e.HasOne<AppUser>().WithMany().HasForeignKey(c => c.UserId).OnDelete(DeleteBehavior.Cascade);
    }
}
