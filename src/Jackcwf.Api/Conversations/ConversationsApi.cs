using System.Buffers.Text;
using System.Globalization;
using System.Security.Claims;
using System.Text;
using Jackcwf.Api.Accounts;
using Jackcwf.Api.Ai;
using Jackcwf.Api.Data;
using Jackcwf.Api.ErrorHandling;
using Jackcwf.Api.Files;
using Jackcwf.Api.Limits;
using Jackcwf.Api.Telemetry;
using Jackcwf.Api.Web;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Conversations;

public static class ConversationsApi
{
    public const int MaxTitleLength = 200;
    public const int MaxSystemPromptLength = 20_000;
    public const int DefaultMessagePageSize = 50;
    public const int MaxMessagePageSize = 200;
    /// <summary><c>?folderId=none</c>: the conversations in no folder.</summary>
    public const string NoFolder = "none";

    public static IEndpointRouteBuilder MapConversationsApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/conversations").WithTags("Conversations").RequireAuthorization();
        api.MapGet("/", ListConversationsAsync).ReportsUnparsedQuery().WithName("ListConversations").WithSummary("The caller's conversations, pinned first then newest first, with cursor paging, search, ?archived=true and ?folderId=<id>|none.");
        api.MapPost("/", CreateConversationAsync).WithName("CreateConversation").WithSummary("Start a conversation.");
        api.MapGet("/{id:guid}", GetConversationAsync).ReportsUnparsedQuery().WithName("GetConversation")
            .WithSummary("A conversation with its messages of every branch (flat, oldest first): all of them, or with ?limit= the newest page and a nextCursor to older ones.");
        api.MapPatch("/{id:guid}", UpdateConversationAsync).WithName("UpdateConversation").WithSummary("Rename, change model or system prompt, pin, archive, or move into a folder (folderId; null takes it out).");
        api.MapDelete("/{id:guid}", DeleteConversationAsync).WithName("DeleteConversation").WithSummary("Delete a conversation and its messages.");
        api.MapGet("/{id:guid}/export", ExportConversationAsync).WithName("ExportConversation").WithSummary("Download as JSON or Markdown (streamed).");
        return app;
    }

    public static async Task<Results<Ok<ConversationPage>, ProblemHttpResult, ValidationProblem>> ListConversationsAsync(
        ClaimsPrincipal user, AppDbContext db, IOptions<LimitsOptions> limits, int? limit, string? cursor, string? q, bool? archived, string? folderId,
        CancellationToken ct)
    {
        var take = limit ?? 20;
        if (take is < 1 or > 100)
        {
            return Problems.Invalid("limit", "must be between 1 and 100");
        }
        ListCursor? after = null;
        if (!string.IsNullOrEmpty(cursor))
        {
            if (DecodeListCursor(cursor) is not { } c)
            {
                return Problems.Invalid("cursor", "is not a cursor returned by this API");
            }
            after = c;
        }
        if (q is { Length: > 500 })
        {
            return Problems.Invalid("q", "must be at most 500 characters");
        }
        Guid? folder = null;
        var unfiled = folderId == NoFolder;
        if (!string.IsNullOrEmpty(folderId) && !unfiled)
        {
            if (!Guid.TryParse(folderId, out var f))
            {
                return Problems.Invalid("folderId", $"must be a folder id or \"{NoFolder}\"");
            }
            folder = f;
        }
        var userId = user.Id();
        if (folder is { } owned && !await Folders.FoldersApi.OwnsAsync(db, userId, owned, ct))
        {
            return Problems.NotFound("folder");
        }
        var showArchived = archived ?? false;
        var query = db.Conversations.AsNoTracking().Where(x => x.UserId == userId && x.Archived == showArchived);
        if (folder is { } inFolder)
        {
            query = query.Where(x => x.FolderId == inFolder);
        }
        else if (unfiled)
        {
            query = query.Where(x => x.FolderId == null);
        }
        if (after is { } a)
        {
            // Pinned conversations come first: after a pinned one come older pinned ones and then every unpinned one.
            var b = a.Before;
            query = a.Pinned ? query.Where(x => !x.Pinned || x.UpdatedAt < b) : query.Where(x => !x.Pinned && x.UpdatedAt < b);
        }
        if (!string.IsNullOrWhiteSpace(q))
        {
            var pattern = "%" + q.Trim().Replace("\\", "\\\\").Replace("%", "\\%").Replace("_", "\\_") + "%";
            // Message text is searched in the account's newest SearchMaxMessages messages only (index
            // messages(UserId, CreatedAt)), so a search costs the same however much the account stores.
            var recent = db.Messages.Where(m => m.UserId == userId).OrderByDescending(m => m.CreatedAt).Take(limits.Value.SearchMaxMessages);
            query = db.Provider == DatabaseProvider.PostgreSql
                ? query.Where(x => EF.Functions.ILike(x.Title, pattern, "\\")
                    || recent.Where(m => EF.Functions.ILike(m.Content, pattern, "\\")).Select(m => m.ConversationId).Contains(x.Id))
                : query.Where(x => EF.Functions.Like(x.Title, pattern, "\\")
                    || recent.Where(m => EF.Functions.Like(m.Content, pattern, "\\")).Select(m => m.ConversationId).Contains(x.Id));
        }
        var rows = await query.OrderByDescending(x => x.Pinned).ThenByDescending(x => x.UpdatedAt).Take(take + 1).ToListAsync(ct);
        var more = rows.Count > take;
        var page = rows.Take(take).ToList();
        var files = await Attachments.ForConversationsAsync(db, page.Select(x => x.Id).ToList(), ct);
        var items = page.Select(x => ConversationSummary.From(x, files[x.Id].ToList())).ToList();
        return TypedResults.Ok(new ConversationPage(items, more ? EncodeListCursor(new(items[^1].Pinned, items[^1].UpdatedAt)) : null));
    }

    public static async Task<Results<Created<ConversationSummary>, ProblemHttpResult, ValidationProblem>> CreateConversationAsync(
        ClaimsPrincipal user, AppDbContext db, ModelCatalog catalog, JackcwfMetrics metrics, IOptions<FilesOptions> files, TimeProvider time,
        CreateConversationRequest? request, CancellationToken ct)
    {
        request ??= new(null, null, null);
        if (Validate(request.Title, request.Model, request.SystemPrompt, catalog) is { } invalid)
        {
            return invalid;
        }
        var now = time.UtcNowForStorage();
        var c = new Conversation
        {
            Id = time.NewId(),
            UserId = user.Id(),
            Title = request.Title?.Trim() ?? "",
            Model = request.Model ?? catalog.Default.Id,
            SystemPrompt = string.IsNullOrWhiteSpace(request.SystemPrompt) ? null : request.SystemPrompt,
            CreatedAt = now,
            UpdatedAt = now,
        };
        db.Conversations.Add(c);
        List<Guid>? attached = null;
        if (request.FileIds is { } fileIds)
        {
            (attached, var problem) = await Attachments.StageAsync(db, c.UserId, c.Id, fileIds, replace: true, files.Value.MaxFilesPerConversation, now, ct);
            if (problem is not null)
            {
                return problem;
            }
        }
        await db.SaveChangesAsync(ct);
        metrics.ConversationCreated();
        return TypedResults.Created($"/api/conversations/{c.Id}", ConversationSummary.From(c, attached));
    }

    public static async Task<Results<Ok<ConversationDetail>, PushStreamHttpResult, ProblemHttpResult, ValidationProblem>> GetConversationAsync(
        ClaimsPrincipal user, AppDbContext db, Guid id, int? limit, string? cursor, CancellationToken ct)
    {
        if (limit is < 1 or > MaxMessagePageSize)
        {
            return Problems.Invalid("limit", $"must be between 1 and {MaxMessagePageSize}");
        }
        DateTime? before = null;
        if (!string.IsNullOrEmpty(cursor))
        {
            if (DecodeCursor(cursor) is not { } b)
            {
                return Problems.Invalid("cursor", "is not a cursor returned by this API");
            }
            before = b;
        }
        var userId = user.Id();
        var c = await db.Conversations.AsNoTracking().FirstOrDefaultAsync(x => x.Id == id && x.UserId == userId, ct);
        if (c is null)
        {
            return Problems.NotFound("conversation");
        }
        if (limit is null && before is null)
        {
            // Clients that do not page get every message, streamed a batch at a time.
            return TypedResults.Stream(body => ConversationStreams.WriteJsonAsync(body, db, c, export: false, ct), "application/json; charset=utf-8");
        }
        var (messages, next) = await ReadPageAsync(db, id, limit ?? DefaultMessagePageSize, before, ct);
        return TypedResults.Ok(new ConversationDetail(c.Id, c.Title, c.Model, c.SystemPrompt, c.CreatedAt, c.UpdatedAt, messages, next,
            c.Pinned, c.Archived, c.FolderId, await Attachments.ListAsync(db, id, ct)));
    }

    /// <summary>The newest <paramref name="take"/> messages before <paramref name="before"/>, oldest first, and the cursor to older ones.</summary>
    private static async Task<(List<MessageDto> Messages, string? NextCursor)> ReadPageAsync(
        AppDbContext db, Guid id, int take, DateTime? before, CancellationToken ct)
    {
        var query = db.Messages.AsNoTracking().Where(m => m.ConversationId == id);
        if (before is { } b)
        {
            query = query.Where(m => m.CreatedAt < b);
        }
        var rows = await query.OrderByDescending(m => m.CreatedAt).ThenByDescending(m => m.Id).Take(take + 1).ToListAsync(ct);
        string? next = null;
        if (rows.Count > take)
        {
            var boundary = rows[take - 1].CreatedAt;
            var spilled = rows[take];
            rows.RemoveAt(take);
            if (spilled.CreatedAt == boundary)
            {
                // Messages sharing the boundary time join this page, so a cursor (a time) never splits them.
                var known = rows.Select(r => r.Id).ToHashSet();
                rows.AddRange((await query.Where(m => m.CreatedAt == boundary).ToListAsync(ct)).Where(m => !known.Contains(m.Id)));
            }
            if (await query.AnyAsync(m => m.CreatedAt < boundary, ct))
            {
                next = EncodeCursor(boundary);
            }
        }
        var feedback = await Feedback.FeedbackApi.ForMessagesAsync(db, rows, ct);
        return (rows.OrderBy(m => m.CreatedAt).ThenBy(m => m.Id).Select(m => MessageDto.From(m, feedback.GetValueOrDefault(m.Id))).ToList(), next);
    }

    public static async Task<Results<Ok<ConversationSummary>, ProblemHttpResult, ValidationProblem>> UpdateConversationAsync(
        ClaimsPrincipal user, AppDbContext db, ModelCatalog catalog, IOptions<FilesOptions> files, TimeProvider time, Guid id, UpdateConversationRequest? request, CancellationToken ct)
    {
        if (request is null)
        {
            return Problems.Invalid("body", "a JSON object with title, model, systemPrompt, pinned, archived, folderId or fileIds is required");
        }
        if (Validate(request.Title, request.Model, request.SystemPrompt, catalog) is { } invalid)
        {
            return invalid;
        }
        var userId = user.Id();
        var c = await db.Conversations.FirstOrDefaultAsync(x => x.Id == id && x.UserId == userId, ct);
        if (c is null)
        {
            return Problems.NotFound("conversation");
        }
        if (request.FolderId is { IsSet: true, Value: { } folder } && !await Folders.FoldersApi.OwnsAsync(db, userId, folder, ct))
        {
            return Problems.NotFound("folder");
        }
        if (request.Pinned is { } pinned)
        {
            c.Pinned = pinned;
        }
        if (request.Archived is { } archived)
        {
            c.Archived = archived;
        }
        if (request.FolderId.IsSet)
        {
            c.FolderId = request.FolderId.Value;
        }
        // Pinning, archiving and filing leave the conversation where it was in time; edits make it recent.
        if (request.Title is not null || request.Model is not null || request.SystemPrompt is not null)
        {
            c.UpdatedAt = time.UtcNowForStorage();
        }
        if (request.Title is not null)
        {
            c.Title = request.Title.Trim();
        }
        if (request.Model is not null)
        {
            c.Model = request.Model;
        }
        if (request.SystemPrompt is not null)
        {
            c.SystemPrompt = string.IsNullOrWhiteSpace(request.SystemPrompt) ? null : request.SystemPrompt;
        }
        List<Guid>? attached = null;
        if (request.FileIds is { } fileIds)
        {
            (attached, var problem) = await Attachments.StageAsync(db, userId, id, fileIds, replace: true, files.Value.MaxFilesPerConversation, time.UtcNowForStorage(), ct);
            if (problem is not null)
            {
                return problem;
            }
        }
        await db.SaveChangesAsync(ct);
        return TypedResults.Ok(ConversationSummary.From(c, attached ?? await Attachments.ListAsync(db, id, ct)));
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> DeleteConversationAsync(
        ClaimsPrincipal user, AppDbContext db, Guid id, CancellationToken ct)
    {
        var userId = user.Id();
        // Messages go with the conversation (cascade); one statement, no load.
        var deleted = await db.Conversations.Where(x => x.Id == id && x.UserId == userId).ExecuteDeleteAsync(ct);
        if (deleted == 0)
        {
            return Problems.NotFound("conversation");
        }
        return TypedResults.NoContent();
    }

    public static async Task<Results<PushStreamHttpResult, ProblemHttpResult, ValidationProblem>> ExportConversationAsync(
        ClaimsPrincipal user, AppDbContext db, Guid id, string? format, CancellationToken ct)
    {
        format = (format ?? "json").ToLowerInvariant();
        if (format is not ("json" or "markdown" or "md"))
        {
            return Problems.Invalid("format", "must be json or markdown");
        }
        var userId = user.Id();
        var c = await db.Conversations.AsNoTracking().FirstOrDefaultAsync(x => x.Id == id && x.UserId == userId, ct);
        if (c is null)
        {
            return Problems.NotFound("conversation");
        }
        var name = FileName(c.Title);
        return format == "json"
            ? TypedResults.Stream(body => ConversationStreams.WriteJsonAsync(body, db, c, export: true, ct), "application/json", name + ".json")
            : TypedResults.Stream(body => ConversationStreams.WriteMarkdownAsync(body, db, c, ct), "text/markdown; charset=utf-8", name + ".md");
    }

    private static ValidationProblem? Validate(string? title, string? model, string? systemPrompt, ModelCatalog catalog)
    {
        var errors = new Dictionary<string, string[]>();
        if (title is { Length: > MaxTitleLength })
        {
            errors["title"] = [$"must be at most {MaxTitleLength} characters"];
        }
        if (model is not null && catalog.Find(model) is null)
        {
            errors["model"] = [$"unknown model \"{Truncate(model)}\"; GET /api/models lists the available ones"];
        }
        if (systemPrompt is { Length: > MaxSystemPromptLength })
        {
            errors["systemPrompt"] = [$"must be at most {MaxSystemPromptLength} characters"];
        }
        return errors.Count > 0 ? Problems.Invalid(errors) : null;
    }

    internal static string Truncate(string s) => s.Length <= 80 ? s : s[..80] + "…";

    private static string EncodeCursor(DateTime t) =>
        Base64Url.EncodeToString(Encoding.ASCII.GetBytes(t.Ticks.ToString(CultureInfo.InvariantCulture)));

    /// <summary>Where a page of the list ended: in the pinned conversations or after them, and the time of its last one.</summary>
    private readonly record struct ListCursor(bool Pinned, DateTime Before);

    /// <summary>A list cursor is the time's ticks, prefixed with 'p' inside the pinned part (cursors from before pinning stay valid).</summary>
    private static string EncodeListCursor(ListCursor c) =>
        c.Pinned ? Base64Url.EncodeToString(Encoding.ASCII.GetBytes("p" + c.Before.Ticks.ToString(CultureInfo.InvariantCulture))) : EncodeCursor(c.Before);

    private static ListCursor? DecodeListCursor(string cursor)
    {
        try
        {
            var text = Encoding.ASCII.GetString(Base64Url.DecodeFromChars(cursor));
            var pinned = text.StartsWith('p');
            var ticks = long.Parse(pinned ? text[1..] : text, NumberStyles.None, CultureInfo.InvariantCulture);
            return ticks > 0 && ticks < DateTime.MaxValue.Ticks ? new ListCursor(pinned, new DateTime(ticks, DateTimeKind.Utc)) : null;
        }
        catch (Exception e) when (e is FormatException or OverflowException)
        {
            return null;
        }
    }

    private static DateTime? DecodeCursor(string cursor)
    {
        try
        {
            var ticks = long.Parse(Encoding.ASCII.GetString(Base64Url.DecodeFromChars(cursor)), CultureInfo.InvariantCulture);
            return ticks > 0 && ticks < DateTime.MaxValue.Ticks ? new DateTime(ticks, DateTimeKind.Utc) : null;
        }
        catch (Exception e) when (e is FormatException or OverflowException)
        {
            return null;
        }
    }

    private static string FileName(string title)
    {
        var safe = new string(title.Select(ch => char.IsLetterOrDigit(ch) || ch is '-' or '_' ? ch : '-').ToArray()).Trim('-');
        return safe.Length == 0 ? "conversation" : safe[..Math.Min(60, safe.Length)];
    }
}
