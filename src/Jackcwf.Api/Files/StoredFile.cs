namespace Jackcwf.Api.Files;

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
