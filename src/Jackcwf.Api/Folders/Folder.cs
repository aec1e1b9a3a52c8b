using Jackcwf.Api.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Jackcwf.Api.Folders;

/// <summary>A user's named group of conversations (<see cref="Conversation.FolderId"/>).</summary>
public sealed class Folder
{
    public Guid Id { get; set; }
    public Guid UserId { get; set; }
    public string Name { get; set; } = "";
    public DateTime CreatedAt { get; set; }
    public DateTime UpdatedAt { get; set; }
}

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

public sealed record FolderDto(Guid Id, string Name, int ConversationCount, DateTime CreatedAt, DateTime UpdatedAt);

public sealed record FolderList(IReadOnlyList<FolderDto> Items);

public sealed record FolderRequest(string? Name);
