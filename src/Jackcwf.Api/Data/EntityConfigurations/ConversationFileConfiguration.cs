using Jackcwf.Api.Files;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Jackcwf.Api.Data.EntityConfigurations;

internal sealed class ConversationFileConfiguration : IEntityTypeConfiguration<ConversationFile>
{
    public void Configure(EntityTypeBuilder<ConversationFile> e)
    {
        e.ToTable("conversation_files");
        e.HasKey(a => new { a.ConversationId, a.FileId });
        e.HasIndex(a => a.FileId);
        e.HasIndex(a => a.UserId);
        e.HasOne<Conversation>().WithMany().HasForeignKey(a => a.ConversationId).OnDelete(DeleteBehavior.Cascade);
        e.HasOne<StoredFile>().WithMany().HasForeignKey(a => a.FileId).OnDelete(DeleteBehavior.Cascade);
    }
}
