using Jackcwf.Api.Files;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Jackcwf.Api.Data.EntityConfigurations;

internal sealed class FileChunkConfiguration : IEntityTypeConfiguration<FileChunk>
{
    public void Configure(EntityTypeBuilder<FileChunk> e)
    {
        e.ToTable("file_chunks");
        e.HasKey(c => c.Id);
        e.HasIndex(c => new { c.FileId, c.ChunkIndex }).IsUnique();
        e.HasIndex(c => c.UserId);
        e.HasOne<StoredFile>().WithMany().HasForeignKey(c => c.FileId).OnDelete(DeleteBehavior.Cascade);
    }
}
