using System.Globalization;
using System.Security.Claims;
using Jackcwf.Api.Accounts;
using Jackcwf.Api.Audit;
using Jackcwf.Api.Data;
using Jackcwf.Api.ErrorHandling;
using Jackcwf.Api.Telemetry;
using Jackcwf.Api.Web;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;

namespace Jackcwf.Api.Files;

public static class FilesApi
{
    /// <summary>Room for the multipart boundaries and part headers around the file itself.</summary>
    public const long MultipartOverheadBytes = 16 * 1024;

    public const string FileField = "file";

    public static IEndpointRouteBuilder MapFilesApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/files").WithTags("Files").RequireAuthorization();
        api.MapPost("/", UploadAsync).WithName("UploadFile")
            .WithSummary("Upload a document (multipart/form-data, field \"file\"): plain text, Markdown, PDF or DOCX. It is processed in the background: status processing, then ready or failed.")
            .Accepts<IFormFile>("multipart/form-data").Produces<FileDto>(StatusCodes.Status201Created);
        api.MapGet("/", ListFilesAsync).WithName("ListFiles").WithSummary("The caller's files, newest first.");
        api.MapGet("/{id:guid}", GetFileAsync).WithName("GetFile").WithSummary("One file's metadata and processing status.");
        api.MapDelete("/{id:guid}", DeleteFileAsync).WithName("DeleteFile").WithSummary("Delete a file, its chunks and its attachments to conversations.");
        return app;
    }

    public static async Task<IResult> UploadAsync(
        HttpContext http, ClaimsPrincipal user, AppDbContext db, IAuditLog audit, FileProcessor processor, JackcwfMetrics metrics,
        IOptions<FilesOptions> options, TimeProvider time, CancellationToken ct)
    {
        var o = options.Value;
        var request = http.Request;
        if (!MediaTypeHeaderValue.TryParse(request.ContentType, out var media) || !media.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase)
            || HeaderUtilities.RemoveQuotes(media.Boundary).Value is not { Length: > 0 and <= 200 } boundary)
        {
            return Problems.Result(StatusCodes.Status415UnsupportedMediaType, "unsupported_media_type", "Unsupported media type",
                $"Send the document as multipart/form-data in a field named \"{FileField}\".");
        }
        // Refused before reading when the client says it is too large; otherwise counted while reading.
        var bodyLimit = o.MaxBytes + MultipartOverheadBytes;
        if (request.ContentLength > bodyLimit)
        {
            return TooLarge(metrics, o);
        }
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
        {
            size.MaxRequestBodySize = bodyLimit;
        }

        (string Name, byte[]? Data)? upload;
        try
        {
            upload = await ReadFileFieldAsync(new MultipartReader(boundary, request.Body), o.MaxBytes, ct);
        }
        catch (IOException e) when (e is not Microsoft.AspNetCore.Http.BadHttpRequestException)
        {
            // MultipartReader reports a body that does not follow its boundary as IOException/InvalidDataException.
            return Problems.Invalid(FileField, "the multipart/form-data body is malformed");
        }
        catch (InvalidDataException)
        {
            return Problems.Invalid(FileField, "the multipart/form-data body is malformed");
        }
        if (upload is { Data: null })
        {
            return TooLarge(metrics, o);
        }
        if (upload is not { Data: { } data } u)
        {
            return Problems.Invalid(FileField, $"is required: send the document as a multipart/form-data file field named \"{FileField}\"");
        }
        if (data.Length == 0)
        {
            return Problems.Invalid(FileField, "is empty");
        }
        if (DocumentText.Detect(data, u.Name) is not { } contentType)
        {
            var problem = Problems.Create(StatusCodes.Status415UnsupportedMediaType, "unsupported_file_type", "Unsupported file type",
                "The file's content is not plain text (UTF-8), Markdown, PDF or DOCX, whatever its name says.");
            problem.Extensions["errors"] = new Dictionary<string, string[]> { [FileField] = ["is not plain text, Markdown, PDF or DOCX"] };
            return TypedResults.Problem(problem);
        }

        var userId = user.Id();
        var mine = db.Set<StoredFile>().Where(f => f.UserId == userId);
        var count = await mine.CountAsync(ct);
        var bytes = await mine.SumAsync(f => f.Size, ct);
        if (bytes + data.Length > o.QuotaBytesPerUser || count >= o.MaxFilesPerUser)
        {
            metrics.LimitRefused("files");
            var problem = Problems.Create(StatusCodes.Status409Conflict, "file_quota_exceeded", "File storage quota reached",
                $"This account stores {count} files of {bytes} bytes; at most {o.MaxFilesPerUser} files and {o.QuotaBytesPerUser} bytes fit. Delete files to make room.");
            problem.Extensions["limit"] = "files";
            return TypedResults.Problem(problem);
        }

        var now = time.UtcNowForStorage();
        var file = new StoredFile
        {
            Id = time.NewId(), UserId = userId, Name = u.Name, ContentType = contentType, Size = data.Length,
            Status = FileStatuses.Processing, CreatedAt = now, Data = data,
            // Claimed for this replica, which starts at once; another takes over only if this one dies.
            ClaimedBy = processor.InstanceId, ClaimExpiresAt = now.AddSeconds(o.ClaimSeconds),
        };
        db.Add(file);
        await db.SaveChangesAsync(ct);
        processor.Enqueue(file.Id);
        await audit.RecordAsync(http, AuditActions.FileUploaded, target: $"file:{file.Id}",
            detail: $"{contentType}, {file.Size.ToString(CultureInfo.InvariantCulture)} bytes", ct: ct);
        return TypedResults.Created($"/api/files/{file.Id}", ToDto(file));
    }

    public static async Task<Ok<FileList>> ListFilesAsync(ClaimsPrincipal user, AppDbContext db, CancellationToken ct)
    {
        var userId = user.Id();
        var items = await Project(db.Set<StoredFile>().AsNoTracking().Where(f => f.UserId == userId).OrderByDescending(f => f.CreatedAt)).ToListAsync(ct);
        return TypedResults.Ok(new FileList(items));
    }

    public static async Task<Results<Ok<FileDto>, ProblemHttpResult>> GetFileAsync(ClaimsPrincipal user, AppDbContext db, Guid id, CancellationToken ct)
    {
        var userId = user.Id();
        var file = await Project(db.Set<StoredFile>().AsNoTracking().Where(f => f.Id == id && f.UserId == userId)).FirstOrDefaultAsync(ct);
        return file is null ? Problems.NotFound("file") : TypedResults.Ok(file);
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> DeleteFileAsync(
        HttpContext http, ClaimsPrincipal user, AppDbContext db, IAuditLog audit, Guid id, CancellationToken ct)
    {
        var userId = user.Id();
        // Chunks and attachments go with the file (cascade); a processor still working on it stops at its next write.
        var deleted = await db.Set<StoredFile>().Where(f => f.Id == id && f.UserId == userId).ExecuteDeleteAsync(ct);
        if (deleted == 0)
        {
            return Problems.NotFound("file");
        }
        await audit.RecordAsync(http, AuditActions.FileDeleted, target: $"file:{id}", ct: ct);
        return TypedResults.NoContent();
    }

    /// <summary>The ids among <paramref name="fileIds"/> that are not files of <paramref name="userId"/> (someone else's look the same as unknown ones).</summary>
    public static async Task<bool> AllOwnedAsync(AppDbContext db, Guid userId, IReadOnlyCollection<Guid> fileIds, CancellationToken ct)
    {
        if (fileIds.Count == 0)
        {
            return true;
        }
        var distinct = fileIds.Distinct().ToList();
        var owned = await db.Set<StoredFile>().CountAsync(f => distinct.Contains(f.Id) && f.UserId == userId, ct);
        return owned == distinct.Count;
    }

    private static IQueryable<FileDto> Project(IQueryable<StoredFile> files) =>
        files.Select(f => new FileDto(f.Id, f.Name, f.Size, f.ContentType, f.Status, f.Error, f.CreatedAt, f.ChunkCount));

    private static FileDto ToDto(StoredFile f) => new(f.Id, f.Name, f.Size, f.ContentType, f.Status, f.Error, f.CreatedAt, f.ChunkCount);

    private static ProblemHttpResult TooLarge(JackcwfMetrics metrics, FilesOptions o)
    {
        metrics.LimitRefused("file_size");
        var problem = Problems.Create(StatusCodes.Status413PayloadTooLarge, "payload_too_large", "The file is too large",
            $"Files are limited to {o.MaxBytes} bytes (FILE_MAX_BYTES).");
        problem.Extensions["errors"] = new Dictionary<string, string[]> { [FileField] = [$"must be at most {o.MaxBytes} bytes"] };
        return TypedResults.Problem(problem);
    }

    /// <summary>The first file part named <see cref="FileField"/> (its data null when over <paramref name="max"/> bytes), or null when there is none.</summary>
    private static async Task<(string Name, byte[]? Data)?> ReadFileFieldAsync(MultipartReader reader, long max, CancellationToken ct)
    {
        while (await reader.ReadNextSectionAsync(ct) is { } section)
        {
            if (ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out var disposition)
                && disposition.IsFileDisposition() && string.Equals(disposition.Name.Value, FileField, StringComparison.Ordinal))
            {
                var name = HeaderUtilities.RemoveQuotes(disposition.FileNameStar.HasValue ? disposition.FileNameStar : disposition.FileName).Value;
                return (CleanName(name), await ReadAtMostAsync(section.Body, max, ct));
            }
        }
        return null;
    }

    /// <summary>The whole stream, or null as soon as it exceeds <paramref name="max"/> bytes.</summary>
    private static async Task<byte[]?> ReadAtMostAsync(Stream body, long max, CancellationToken ct)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int read;
        while ((read = await body.ReadAsync(chunk, ct)) > 0)
        {
            if (buffer.Length + read > max)
            {
                return null;
            }
            buffer.Write(chunk, 0, read);
        }
        return buffer.ToArray();
    }

    private static string CleanName(string? raw)
    {
        // Browsers on Windows may send a full path; keep the last segment, printable characters only.
        var name = (raw ?? "").Replace('\\', '/');
        name = name[(name.LastIndexOf('/') + 1)..];
        name = new string(name.Where(c => !char.IsControl(c)).ToArray()).Trim();
        if (name.Length > 255)
        {
            var ext = Path.GetExtension(name);
            name = ext.Length is > 0 and <= 16 ? name[..(255 - ext.Length)] + ext : name[..255];
        }
        return name.Length == 0 ? "document" : name;
    }
}
