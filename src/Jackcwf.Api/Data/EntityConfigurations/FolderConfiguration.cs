using Jackcwf.Api.Folders;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Jackcwf.Api.Data.EntityConfigurations;

internal sealed class FolderConfiguration : IEntityTypeConfiguration<Folder>
{
    public void Configure(EntityTypeBuilder<Folder> e)
    {
        e.ToTable("folders");
        e.HasKey(f => f.Id);
        e.Property(f => f.Name).HasMaxLength(FoldersApi.MaxNameLength);
        e.HasIndex(f => f.UserId);
        e.HasOne<AppUser>().WithMany().HasForeignKey(f => f.UserId).OnDelete(DeleteBehavior.Cascade);
    }
}
