namespace Jackcwf.Api.Files;

/// <summary>One excerpt an answer was given: which file, which chunk, how similar (cosine), and its start.</summary>
public sealed record SourceDto(Guid FileId, string FileName, int ChunkIndex, double Score, string Snippet);

public sealed record FileDto(Guid Id, string Name, long Size, string ContentType, string Status, string? Error, DateTime CreatedAt, int ChunkCount);

public sealed record FileList(IReadOnlyList<FileDto> Items);

/// <summary>A file's metadata in the account export (<c>files.json</c>); its extracted text is <see cref="TextEntry"/> beside it.</summary>
public sealed record ExportFile(Guid Id, string Name, long Size, string ContentType, string Status, string? Error, DateTime CreatedAt, string? TextEntry);
