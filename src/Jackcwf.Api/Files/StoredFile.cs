using Jackcwf.Api.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Jackcwf.Api.Files;

public static class FileStatuses
{
    public const string Processing = "processing";
    public const string Ready = "ready";
    public const string Failed = "failed";
}

/// <summary>
/// A document a user uploaded. The upload is kept in <see cref="Data"/> only until it is processed
/// (so a restart or another replica can take the work over); then the extracted <see cref="Text"/>
/// and the chunks with their vectors (<see cref="FileChunk"/>) are what remains.
/// </summary>
public sealed class StoredFile
{
    public Guid Id { get; set; }
    public Guid UserId { get; set; }
    public string Name { get; set; } = "";
    /// <summary>What the content was recognised as: text/plain, text/markdown, application/pdf or the DOCX type.</summary>
    public string ContentType { get; set; } = "";
    public long Size { get; set; }
    public string Status { get; set; } = FileStatuses.Processing;
    /// <summary>Why processing failed, in words a user can act on.</summary>
    public string? Error { get; set; }
    public int ChunkCount { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime? ProcessedAt { get; set; }
    /// <summary>The uploaded bytes, until processing ends (then null).</summary>
    public byte[]? Data { get; set; }
    /// <summary>The extracted text (exported with the account's data).</summary>
    public string? Text { get; set; }
    /// <summary>The embedding model the chunks' vectors come from.</summary>
    public string? EmbeddingModel { get; set; }
    /// <summary>Replica processing the file, and until when its claim holds (renewed while it works).</summary>
    public string? ClaimedBy { get; set; }
    public DateTime? ClaimExpiresAt { get; set; }
}

/// <summary>
/// One overlapping piece of a file's text and its embedding (float32, little-endian), stored in the
/// database so every replica, and a restore, searches the same vectors.
/// </summary>
public sealed class FileChunk
{
    public Guid Id { get; set; }
    public Guid FileId { get; set; }
    /// <summary>Denormalised owner: retrieval and account deletion filter on it directly.</summary>
    public Guid UserId { get; set; }
    public int ChunkIndex { get; set; }
    public string Text { get; set; } = "";
    public byte[] Embedding { get; set; } = [];
}

/// <summary>A file attached to a conversation: its chunks are searched on every turn.</summary>
public sealed class ConversationFile
{
    public Guid ConversationId { get; set; }
    public Guid FileId { get; set; }
    public Guid UserId { get; set; }
    public DateTime CreatedAt { get; set; }
}

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
