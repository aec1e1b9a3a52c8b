using Jackcwf.Api.Files;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Jackcwf.Api.Data.EntityConfigurations;

internal sealed class StoredFileConfiguration : IEntityTypeConfiguration<StoredFile>
{
    public void Configure(EntityTypeBuilder<StoredFile> e)
    {
        e.ToTable("files");
        e.HasKey(f => f.Id);
        e.Property(f => f.Name).HasMaxLength(255);
        e.Property(f => f.ContentType).HasMaxLength(100);
        e.Property(f => f.Status).HasMaxLength(16);
        e.Property(f => f.Error).HasMaxLength(500);
        e.Property(f => f.EmbeddingModel).HasMaxLength(200);
        e.Property(f => f.ClaimedBy).HasMaxLength(128);
        e.HasIndex(f => new { f.UserId, f.CreatedAt });
        // The processor's sweep looks for unfinished files whose claim lapsed.
        e.HasIndex(f => new { f.Status, f.ClaimExpiresAt });
        e.HasOne<AppUser>().WithMany().HasForeignKey(f => f.UserId).OnDelete(DeleteBehavior.Cascade);
    }
}
