using System.Buffers.Text;
using System.Globalization;
using System.Security.Claims;
using System.Text;
using System.Text.Json;
using Jackcwf.Api.Accounts;
using Jackcwf.Api.Ai;
using Jackcwf.Api.Data;
using Jackcwf.Api.Telemetry;
using Jackcwf.Api.Web;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace Jackcwf.Api.Conversations;

public static class ConversationsApi
{
    public const int MaxTitleLength = 200;
    public const int MaxSystemPromptLength = 20_000;

    public static IEndpointRouteBuilder MapConversationsApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/conversations").WithTags("Conversations").RequireAuthorization();
        api.MapGet("/", ListConversationsAsync).WithName("ListConversations").WithSummary("The caller's conversations, newest first, with cursor paging and search.");
        api.MapPost("/", CreateConversationAsync).WithName("CreateConversation").WithSummary("Start a conversation.");
        api.MapGet("/{id:guid}", GetConversationAsync).WithName("GetConversation").WithSummary("A conversation with every message of every branch (flat, oldest first).");
        api.MapPatch("/{id:guid}", UpdateConversationAsync).WithName("UpdateConversation").WithSummary("Rename, change model or system prompt.");
        api.MapDelete("/{id:guid}", DeleteConversationAsync).WithName("DeleteConversation").WithSummary("Delete a conversation and its messages.");
        api.MapGet("/{id:guid}/export", ExportConversationAsync).WithName("ExportConversation").WithSummary("Download as JSON or Markdown.");
        return app;
    }

    public static async Task<Results<Ok<ConversationPage>, ValidationProblem>> ListConversationsAsync(
        ClaimsPrincipal user, AppDbContext db, int? limit, string? cursor, string? q, CancellationToken ct)
    {
        var take = limit ?? 20;
        if (take is < 1 or > 100)
        {
            return Problems.Invalid("limit", "must be between 1 and 100");
        }
        DateTime? before = null;
        if (!string.IsNullOrEmpty(cursor))
        {
            if (DecodeCursor(cursor) is not { } c)
            {
                return Problems.Invalid("cursor", "is not a cursor returned by this API");
            }
            before = c;
        }
        if (q is { Length: > 500 })
        {
            return Problems.Invalid("q", "must be at most 500 characters");
        }
        var userId = user.Id();
        var query = db.Conversations.AsNoTracking().Where(x => x.UserId == userId);
        if (before is { } b)
        {
            query = query.Where(x => x.UpdatedAt < b);
        }
        if (!string.IsNullOrWhiteSpace(q))
        {
            var pattern = "%" + q.Trim().Replace("\\", "\\\\").Replace("%", "\\%").Replace("_", "\\_") + "%";
            query = db.Provider == DatabaseProvider.PostgreSql
                ? query.Where(x => EF.Functions.ILike(x.Title, pattern, "\\") || db.Messages.Any(m => m.ConversationId == x.Id && EF.Functions.ILike(m.Content, pattern, "\\")))
                : query.Where(x => EF.Functions.Like(x.Title, pattern, "\\") || db.Messages.Any(m => m.ConversationId == x.Id && EF.Functions.Like(m.Content, pattern, "\\")));
        }
        var rows = await query.OrderByDescending(x => x.UpdatedAt).Take(take + 1).ToListAsync(ct);
        var more = rows.Count > take;
        var items = rows.Take(take).Select(ConversationSummary.From).ToList();
        return TypedResults.Ok(new ConversationPage(items, more ? EncodeCursor(items[^1].UpdatedAt) : null));
    }

    public static async Task<Results<Created<ConversationSummary>, ValidationProblem>> CreateConversationAsync(
        ClaimsPrincipal user, AppDbContext db, ModelCatalog catalog, JackcwfMetrics metrics, CreateConversationRequest? request, CancellationToken ct)
    {
        request ??= new(null, null, null);
        if (Validate(request.Title, request.Model, request.SystemPrompt, catalog) is { } invalid)
        {
            return invalid;
        }
        var now = Clock.UtcNow();
        var c = new Conversation
        {
            Id = Clock.NewId(),
            UserId = user.Id(),
            Title = request.Title?.Trim() ?? "",
            Model = request.Model ?? catalog.Default.Id,
            SystemPrompt = string.IsNullOrWhiteSpace(request.SystemPrompt) ? null : request.SystemPrompt,
            CreatedAt = now,
            UpdatedAt = now,
        };
        db.Conversations.Add(c);
        await db.SaveChangesAsync(ct);
        metrics.ConversationCreated();
        return TypedResults.Created($"/api/conversations/{c.Id}", ConversationSummary.From(c));
    }

    public static async Task<Results<Ok<ConversationDetail>, ProblemHttpResult>> GetConversationAsync(
        ClaimsPrincipal user, AppDbContext db, Guid id, CancellationToken ct) =>
        await LoadDetailAsync(db, user.Id(), id, ct) is { } d ? TypedResults.Ok(d) : Problems.NotFound("conversation");

    public static async Task<Results<Ok<ConversationSummary>, ProblemHttpResult, ValidationProblem>> UpdateConversationAsync(
        ClaimsPrincipal user, AppDbContext db, ModelCatalog catalog, Guid id, UpdateConversationRequest? request, CancellationToken ct)
    {
        if (request is null)
        {
            return Problems.Invalid("body", "a JSON object with title, model or systemPrompt is required");
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
        c.UpdatedAt = Clock.UtcNow();
        await db.SaveChangesAsync(ct);
        return TypedResults.Ok(ConversationSummary.From(c));
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

    public static async Task<Results<FileContentHttpResult, ProblemHttpResult, ValidationProblem>> ExportConversationAsync(
        ClaimsPrincipal user, AppDbContext db, Guid id, string? format, CancellationToken ct)
    {
        format = (format ?? "json").ToLowerInvariant();
        if (format is not ("json" or "markdown" or "md"))
        {
            return Problems.Invalid("format", "must be json or markdown");
        }
        if (await LoadDetailAsync(db, user.Id(), id, ct) is not { } d)
        {
            return Problems.NotFound("conversation");
        }
        var name = FileName(d.Title);
        if (format == "json")
        {
            var bytes = JsonSerializer.SerializeToUtf8Bytes(new ExportDocument(d, DateTime.UtcNow, "jackcwf.conversation.v1"), AppJsonContext.Default.ExportDocument);
            return TypedResults.File(bytes, "application/json", name + ".json");
        }
        return TypedResults.File(Encoding.UTF8.GetBytes(ToMarkdown(d)), "text/markdown; charset=utf-8", name + ".md");
    }

    internal static async Task<ConversationDetail?> LoadDetailAsync(AppDbContext db, Guid userId, Guid id, CancellationToken ct)
    {
        var c = await db.Conversations.AsNoTracking().FirstOrDefaultAsync(x => x.Id == id && x.UserId == userId, ct);
        if (c is null)
        {
            return null;
        }
        var messages = await db.Messages.AsNoTracking().Where(m => m.ConversationId == id).OrderBy(m => m.CreatedAt).ToListAsync(ct);
        return new ConversationDetail(c.Id, c.Title, c.Model, c.SystemPrompt, c.CreatedAt, c.UpdatedAt, messages.Select(MessageDto.From).ToList());
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

    internal static string ToMarkdown(ConversationDetail d)
    {
        var sb = new StringBuilder();
        sb.Append("# ").AppendLine(string.IsNullOrWhiteSpace(d.Title) ? "Conversation" : d.Title).AppendLine();
        sb.Append("- Model: `").Append(d.Model).AppendLine("`");
        sb.Append("- Created: ").AppendLine(d.CreatedAt.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture));
        if (d.SystemPrompt is { } sp)
        {
            sb.AppendLine().AppendLine("## System prompt").AppendLine().AppendLine(sp);
        }
        foreach (var m in d.Messages)
        {
            sb.AppendLine().Append("## ").Append(m.Role == MessageRoles.User ? "User" : "Assistant");
            if (m.Model is { } model && m.Role == MessageRoles.Assistant)
            {
                sb.Append(" (").Append(model).Append(')');
            }
            if (m.Status != MessageStatuses.Complete)
            {
                sb.Append(" — ").Append(m.Status);
            }
            sb.AppendLine().AppendLine().AppendLine(m.Content);
        }
        return sb.ToString();
    }
}
