using System.IO.Compression;
using System.Security.Claims;
using System.Text.Json;
using Jackcwf.Api.Accounts;
using Jackcwf.Api.Audit;
using Jackcwf.Api.Conversations;
using Jackcwf.Api.Data;
using Jackcwf.Api.Files;
using Jackcwf.Api.Sharing;
using Jackcwf.Api.Web;
using Microsoft.EntityFrameworkCore;

namespace Jackcwf.Api.Privacy;

public static class ExportApi
{
    public static IEndpointRouteBuilder MapExportApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/me/export", ExportAsync).WithTags("Accounts").RequireAuthorization().WithName("ExportMyData")
            .WithSummary("Everything of the caller as a ZIP of JSON and Markdown: conversations with every branch, usage, API key names, share links, folders, saved prompts, feedback, and files' metadata and text.");
        return app;
    }

    /// <summary>
    /// Streams the archive while reading: one conversation in memory at a time, so an account with
    /// thousands of conversations costs no more memory than one with a few.
    /// </summary>
    public static async Task ExportAsync(HttpContext http, ClaimsPrincipal user, AppDbContext db, IAuditLog audit, Usage.UsageLedger ledger, TimeProvider time, CancellationToken ct)
    {
        var userId = user.Id();
        var now = time.GetUtcNow().UtcDateTime;
        await ledger.FlushAsync(ct);
        var account = await db.Users.AsNoTracking().Where(u => u.Id == userId).Select(u => new { u.Email, u.CreatedAt }).FirstAsync(ct);
        await audit.RecordAsync(http, AuditActions.DataExported, target: $"user:{userId}", ct: ct);
        http.Response.ContentType = "application/zip";
        http.Response.Headers.ContentDisposition = $"attachment; filename=\"jackcwf-export-{now:yyyyMMdd}.zip\"";
        http.Response.Headers.CacheControl = "no-store";

        var body = new BufferedWriteStream(http.Response.Body);
        var zip = await ZipArchive.CreateAsync(body, ZipArchiveMode.Create, leaveOpen: true, entryNameEncoding: null, ct);
        await WriteJsonAsync(zip, body, "account.json", new ExportAccount(userId, account.Email ?? "", account.CreatedAt, now, "jackcwf.export.v1"), AppJsonContext.Default.ExportAccount, ct);

        var conversations = await db.Conversations.AsNoTracking().Where(c => c.UserId == userId).OrderBy(c => c.CreatedAt).ToListAsync(ct);
        foreach (var c in conversations)
        {
            // The conversation export's own writers: one batch of messages in memory at a time.
            await WriteEntryAsync(zip, body, $"conversations/{c.Id}.json", s => ConversationStreams.WriteJsonAsync(s, db, c, export: true, ct), ct);
            await WriteEntryAsync(zip, body, $"conversations/{c.Id}.md", s => ConversationStreams.WriteMarkdownAsync(s, db, c, ct), ct);
        }

        var usage = await db.UsageRecords.AsNoTracking().Where(u => u.UserId == userId).OrderBy(u => u.CreatedAt)
            .Select(u => new ExportUsage(u.Model, u.Source, u.InputTokens, u.OutputTokens, u.CostUsd, u.CreatedAt)).ToListAsync(ct);
        await WriteJsonAsync(zip, body, "usage.json", usage, AppJsonContext.Default.ListExportUsage, ct);
        var keys = await db.ApiKeys.AsNoTracking().Where(k => k.UserId == userId).OrderBy(k => k.CreatedAt)
            .Select(k => new ExportApiKey(k.Name, k.Prefix, k.CreatedAt, k.LastUsedAt)).ToListAsync(ct);
        await WriteJsonAsync(zip, body, "api-keys.json", keys, AppJsonContext.Default.ListExportApiKey, ct);
        var shares = await db.Set<ShareLink>().AsNoTracking().Where(s => s.UserId == userId).OrderBy(s => s.CreatedAt)
            .Select(s => new ExportShare(s.ConversationId, s.Title, s.CreatedAt)).ToListAsync(ct);
        await WriteJsonAsync(zip, body, "share-links.json", shares, AppJsonContext.Default.ListExportShare, ct);
        var folders = await db.Folders.AsNoTracking().Where(f => f.UserId == userId).OrderBy(f => f.CreatedAt)
            .Select(f => new ExportFolder(f.Id, f.Name, f.CreatedAt)).ToListAsync(ct);
        await WriteJsonAsync(zip, body, "folders.json", folders, AppJsonContext.Default.ListExportFolder, ct);
        var prompts = await db.SavedPrompts.AsNoTracking().Where(p => p.UserId == userId).OrderBy(p => p.CreatedAt)
            .Select(p => new ExportPrompt(p.Title, p.Command, p.Text, p.CreatedAt, p.UpdatedAt)).ToListAsync(ct);
        await WriteJsonAsync(zip, body, "prompts.json", prompts, AppJsonContext.Default.ListExportPrompt, ct);
        var feedback = await db.MessageFeedback.AsNoTracking().Where(f => f.UserId == userId).OrderBy(f => f.UpdatedAt)
            .Select(f => new ExportFeedback(f.ConversationId, f.MessageId, f.Model, f.Rating, f.Comment, f.UpdatedAt)).ToListAsync(ct);
        await WriteJsonAsync(zip, body, "feedback.json", feedback, AppJsonContext.Default.ListExportFeedback, ct);
        await WriteFilesAsync(zip, body, db, userId, ct);
        await zip.DisposeAsync();
        await body.FlushAsync(ct);
    }

    /// <summary><c>files.json</c> (metadata) and <c>files/{id}.txt</c> (the extracted text), one file's text in memory at a time.</summary>
    private static async Task WriteFilesAsync(ZipArchive zip, Stream body, AppDbContext db, Guid userId, CancellationToken ct)
    {
        var files = await db.Set<StoredFile>().AsNoTracking().Where(f => f.UserId == userId).OrderBy(f => f.CreatedAt)
            .Select(f => new { f.Id, f.Name, f.Size, f.ContentType, f.Status, f.Error, f.CreatedAt, HasText = f.Text != null }).ToListAsync(ct);
        var list = files.Select(f => new ExportFile(f.Id, f.Name, f.Size, f.ContentType, f.Status, f.Error, f.CreatedAt, f.HasText ? $"files/{f.Id}.txt" : null)).ToList();
        await WriteJsonAsync(zip, body, "files.json", list, AppJsonContext.Default.ListExportFile, ct);
        foreach (var f in files.Where(f => f.HasText))
        {
            var text = await db.Set<StoredFile>().AsNoTracking().Where(x => x.Id == f.Id).Select(x => x.Text).FirstOrDefaultAsync(ct);
            await WriteEntryAsync(zip, body, $"files/{f.Id}.txt", async s =>
            {
                await using var writer = new StreamWriter(s, new System.Text.UTF8Encoding(false), leaveOpen: true);
                await writer.WriteAsync(text);
            }, ct);
        }
    }

    private static async Task WriteJsonAsync<T>(ZipArchive zip, Stream body, string name, T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type, CancellationToken ct)
    {
        await using (var stream = await zip.CreateEntry(name, CompressionLevel.Fastest).OpenAsync(ct))
        {
            await JsonSerializer.SerializeAsync(stream, value, type, ct);
        }
        await body.FlushAsync(ct);
    }

    private static async Task WriteEntryAsync(ZipArchive zip, Stream body, string name, Func<Stream, Task> write, CancellationToken ct)
    {
        await using (var stream = await zip.CreateEntry(name, CompressionLevel.Fastest).OpenAsync(ct))
        {
            await write(stream);
        }
        await body.FlushAsync(ct);
    }
}
