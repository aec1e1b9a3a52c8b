using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Files;

/// <summary>Uploads, processing and retrieval of documents (docs/configuration.md, "Documents").</summary>
public sealed class FilesOptions
{
    public const string Section = "Files";

    /// <summary><c>FILE_MAX_BYTES</c>: largest upload; a larger one is refused with 413.</summary>
    public long MaxBytes { get; set; } = 10 * 1024 * 1024;

    /// <summary><c>FILES_QUOTA_BYTES</c>: the sum of one user's uploaded file sizes.</summary>
    public long QuotaBytesPerUser { get; set; } = 100 * 1024 * 1024;

    /// <summary><c>FILES_MAX_PER_USER</c>: files one user may keep.</summary>
    public int MaxFilesPerUser { get; set; } = 1000;

    /// <summary><c>FILES_TOP_K</c>: chunks of the attached files given to the model on each turn.</summary>
    public int TopK { get; set; } = 4;

    /// <summary><c>FILES_CHUNK_CHARS</c>: characters per chunk (all-MiniLM-L6-v2 reads about 256 word pieces, roughly 1,000 characters).</summary>
    public int ChunkChars { get; set; } = 800;

    /// <summary><c>FILES_CHUNK_OVERLAP_CHARS</c>: characters a chunk repeats from the end of the previous one.</summary>
    public int ChunkOverlapChars { get; set; } = 160;

    /// <summary><c>FILES_MAX_CHUNKS</c>: chunks one file may produce; a file with more text fails with a reason.</summary>
    public int MaxChunksPerFile { get; set; } = 1000;

    /// <summary><c>FILES_MAX_PER_CONVERSATION</c>: files attached to one conversation (each turn searches them all).</summary>
    public int MaxFilesPerConversation { get; set; } = 10;

    /// <summary>Seconds a replica's claim on a file it processes holds without renewal; a crashed replica's files are taken over after it.</summary>
    public int ClaimSeconds { get; set; } = 60;
}

internal sealed class ValidateFilesOptions : IValidateOptions<FilesOptions>
{
    public ValidateOptionsResult Validate(string? name, FilesOptions o)
    {
        var errors = new List<string>();
        if (o.ChunkOverlapChars >= o.ChunkChars)
        {
            errors.Add($"FILES_CHUNK_OVERLAP_CHARS ({o.ChunkOverlapChars}) must be smaller than FILES_CHUNK_CHARS ({o.ChunkChars}).");
        }
        if (o.QuotaBytesPerUser < o.MaxBytes)
        {
            errors.Add($"FILES_QUOTA_BYTES ({o.QuotaBytesPerUser}) must be at least FILE_MAX_BYTES ({o.MaxBytes}).");
        }
        if (o.ClaimSeconds < 5)
        {
            errors.Add("Files:ClaimSeconds must be at least 5.");
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
