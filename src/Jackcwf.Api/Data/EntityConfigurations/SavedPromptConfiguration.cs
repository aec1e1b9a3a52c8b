using Jackcwf.Api.Prompts;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Jackcwf.Api.Data.EntityConfigurations;

internal sealed class SavedPromptConfiguration : IEntityTypeConfiguration<SavedPrompt>
{
    public void Configure(EntityTypeBuilder<SavedPrompt> e)
    {
        e.ToTable("saved_prompts");
        e.HasKey(p => p.Id);
        e.Property(p => p.Title).HasMaxLength(PromptsApi.MaxTitleLength);
        e.Property(p => p.Command).HasMaxLength(PromptsApi.MaxCommandLength);
        e.Property(p => p.Text).HasMaxLength(PromptsApi.MaxTextLength);
        // NULLs are distinct in a unique index (SQLite and PostgreSQL): prompts without a command never collide.
        e.HasIndex(p => new { p.UserId, p.Command }).IsUnique();
        e.HasOne<AppUser>().WithMany().HasForeignKey(p => p.UserId).OnDelete(DeleteBehavior.Cascade);
    }
}
