namespace Jackcwf.Api.Files;

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
