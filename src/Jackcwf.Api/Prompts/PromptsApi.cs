using System.Security.Claims;
using Jackcwf.Api.Accounts;
using Jackcwf.Api.Configuration;
using Jackcwf.Api.Data;
using Jackcwf.Api.Telemetry;
using Jackcwf.Api.Web;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Prompts;

public static class PromptsApi
{
    public const int MaxTitleLength = 100;
    public const int MaxCommandLength = 32;
    public const int MaxTextLength = 20_000;

    public static IEndpointRouteBuilder MapPromptsApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/prompts").WithTags("Prompts").RequireAuthorization();
        api.MapGet("/", ListPromptsAsync).WithName("ListPrompts").WithSummary("The caller's saved prompts by title.");
        api.MapPost("/", CreatePromptAsync).WithName("CreatePrompt").WithSummary("Save a prompt: {title, command?, text}.");
        api.MapPatch("/{id:guid}", UpdatePromptAsync).WithName("UpdatePrompt").WithSummary("Change a saved prompt's title, command or text.");
        api.MapDelete("/{id:guid}", DeletePromptAsync).WithName("DeletePrompt").WithSummary("Delete a saved prompt.");
        return app;
    }

    public static async Task<Ok<SavedPromptList>> ListPromptsAsync(ClaimsPrincipal user, AppDbContext db, CancellationToken ct)
    {
        var userId = user.Id();
        var rows = await db.SavedPrompts.AsNoTracking().Where(p => p.UserId == userId).ToListAsync(ct);
        return TypedResults.Ok(new SavedPromptList(rows.OrderBy(p => p.Title, StringComparer.CurrentCultureIgnoreCase).ThenBy(p => p.CreatedAt)
            .Select(SavedPromptDto.From).ToList()));
    }

    public static async Task<Results<Created<SavedPromptDto>, ProblemHttpResult, ValidationProblem>> CreatePromptAsync(
        ClaimsPrincipal user, AppDbContext db, IOptions<LimitsOptions> limits, JackcwfMetrics metrics, SavedPromptRequest? request, CancellationToken ct)
    {
        request ??= new(null, null, null);
        var errors = Validate(request, creating: true);
        if (errors.Count > 0)
        {
            return Problems.Invalid(errors);
        }
        var userId = user.Id();
        var command = NormalizeCommand(request.Command);
        var existing = await db.SavedPrompts.Where(p => p.UserId == userId).Select(p => p.Command).ToListAsync(ct);
        if (existing.Count >= limits.Value.MaxSavedPromptsPerUser)
        {
            metrics.LimitRefused("saved_prompts");
            return Problems.LimitReached("prompt_limit", "saved_prompts", "Saved prompt limit reached",
                $"An account keeps at most {limits.Value.MaxSavedPromptsPerUser} saved prompts. Delete one to make room.");
        }
        if (command is not null && existing.Contains(command))
        {
            return CommandTaken(command);
        }
        var now = Clock.UtcNow();
        var prompt = new SavedPrompt
        {
            Id = Clock.NewId(), UserId = userId, Title = request.Title!.Trim(), Command = command, Text = request.Text!, CreatedAt = now, UpdatedAt = now,
        };
        db.SavedPrompts.Add(prompt);
        await db.SaveChangesAsync(ct);
        return TypedResults.Created($"/api/prompts/{prompt.Id}", SavedPromptDto.From(prompt));
    }

    public static async Task<Results<Ok<SavedPromptDto>, ProblemHttpResult, ValidationProblem>> UpdatePromptAsync(
        ClaimsPrincipal user, AppDbContext db, Guid id, SavedPromptRequest? request, CancellationToken ct)
    {
        if (request is null || (request.Title is null && request.Command is null && request.Text is null))
        {
            return Problems.Invalid("body", "a JSON object with title, command or text is required");
        }
        var errors = Validate(request, creating: false);
        if (errors.Count > 0)
        {
            return Problems.Invalid(errors);
        }
        var userId = user.Id();
        var prompt = await db.SavedPrompts.FirstOrDefaultAsync(p => p.Id == id && p.UserId == userId, ct);
        if (prompt is null)
        {
            return Problems.NotFound("saved prompt");
        }
        if (request.Command is not null)
        {
            var command = NormalizeCommand(request.Command);
            if (command is not null && await db.SavedPrompts.AnyAsync(p => p.UserId == userId && p.Id != id && p.Command == command, ct))
            {
                return CommandTaken(command);
            }
            prompt.Command = command;
        }
        if (request.Title is not null)
        {
            prompt.Title = request.Title.Trim();
        }
        if (request.Text is not null)
        {
            prompt.Text = request.Text;
        }
        prompt.UpdatedAt = Clock.UtcNow();
        await db.SaveChangesAsync(ct);
        return TypedResults.Ok(SavedPromptDto.From(prompt));
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> DeletePromptAsync(ClaimsPrincipal user, AppDbContext db, Guid id, CancellationToken ct)
    {
        var userId = user.Id();
        var deleted = await db.SavedPrompts.Where(p => p.Id == id && p.UserId == userId).ExecuteDeleteAsync(ct);
        return deleted == 0 ? Problems.NotFound("saved prompt") : TypedResults.NoContent();
    }

    private static Dictionary<string, string[]> Validate(SavedPromptRequest r, bool creating)
    {
        var errors = new Dictionary<string, string[]>();
        if ((creating || r.Title is not null) && r.Title?.Trim() is not { Length: > 0 and <= MaxTitleLength })
        {
            errors["title"] = [$"is required: 1 to {MaxTitleLength} characters"];
        }
        if (r.Command?.Trim().TrimStart('/') is { Length: > 0 } && NormalizeCommand(r.Command) is null)
        {
            errors["command"] = [$"must be 1 to {MaxCommandLength} lower-case letters, digits, '-' or '_' (a leading '/' is dropped)"];
        }
        if ((creating || r.Text is not null) && (string.IsNullOrWhiteSpace(r.Text) || r.Text.Length > MaxTextLength))
        {
            errors["text"] = [$"is required: 1 to {MaxTextLength} characters"];
        }
        return errors;
    }

    /// <summary><c>/Summarise</c> → <c>summarise</c>; null when empty; and null for anything else than the allowed characters (Validate refuses those first).</summary>
    private static string? NormalizeCommand(string? command)
    {
        var c = command?.Trim().TrimStart('/').ToLowerInvariant();
        return c is { Length: > 0 and <= MaxCommandLength } && c.All(ch => char.IsAsciiLetterLower(ch) || char.IsAsciiDigit(ch) || ch is '-' or '_') ? c : null;
    }

    private static ProblemHttpResult CommandTaken(string command) =>
        Problems.Conflict($"command: /{command} is already used by another saved prompt.");
}
