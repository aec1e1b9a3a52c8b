using Jackcwf.Api.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Jackcwf.Api.Prompts;

/// <summary>A text the user inserts into the composer by typing <c>/</c> and choosing it (or its command).</summary>
public sealed class SavedPrompt
{
    public Guid Id { get; set; }
    public Guid UserId { get; set; }
    public string Title { get; set; } = "";
    /// <summary>Optional short word typed after <c>/</c> (lower case, digits, '-' and '_'), unique per user.</summary>
    public string? Command { get; set; }
    public string Text { get; set; } = "";
    public DateTime CreatedAt { get; set; }
    public DateTime UpdatedAt { get; set; }
}

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

public sealed record SavedPromptDto(Guid Id, string Title, string? Command, string Text, DateTime CreatedAt, DateTime UpdatedAt)
{
    public static SavedPromptDto From(SavedPrompt p) => new(p.Id, p.Title, p.Command, p.Text, p.CreatedAt, p.UpdatedAt);
}

public sealed record SavedPromptList(IReadOnlyList<SavedPromptDto> Items);

/// <summary>On PATCH, an absent (null) field is left as it is; <c>command: ""</c> removes the command.</summary>
public sealed record SavedPromptRequest(string? Title, string? Command, string? Text);
