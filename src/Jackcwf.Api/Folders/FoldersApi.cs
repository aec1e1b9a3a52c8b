using System.Security.Claims;
using Jackcwf.Api.Accounts;
using Jackcwf.Api.Configuration;
using Jackcwf.Api.Data;
using Jackcwf.Api.Telemetry;
using Jackcwf.Api.Web;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Folders;

public static class FoldersApi
{
    public const int MaxNameLength = 100;

    public static IEndpointRouteBuilder MapFoldersApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/folders").WithTags("Folders").RequireAuthorization();
        api.MapGet("/", ListFoldersAsync).WithName("ListFolders").WithSummary("The caller's folders by name, with how many conversations each holds.");
        api.MapPost("/", CreateFolderAsync).WithName("CreateFolder").WithSummary("Create a folder; PATCH /api/conversations/{id} with folderId moves a conversation into it.");
        api.MapPatch("/{id:guid}", RenameFolderAsync).WithName("RenameFolder").WithSummary("Rename a folder.");
        api.MapDelete("/{id:guid}", DeleteFolderAsync).WithName("DeleteFolder").WithSummary("Delete a folder; its conversations move out of it and are kept.");
        return app;
    }

    public static async Task<Ok<FolderList>> ListFoldersAsync(ClaimsPrincipal user, AppDbContext db, CancellationToken ct)
    {
        var userId = user.Id();
        var folders = await db.Folders.AsNoTracking().Where(f => f.UserId == userId).ToListAsync(ct);
        var counts = await db.Conversations.Where(c => c.UserId == userId && c.FolderId != null)
            .GroupBy(c => c.FolderId!.Value).Select(g => new { Id = g.Key, Count = g.Count() }).ToDictionaryAsync(g => g.Id, g => g.Count, ct);
        return TypedResults.Ok(new FolderList(folders.OrderBy(f => f.Name, StringComparer.CurrentCultureIgnoreCase).ThenBy(f => f.CreatedAt)
            .Select(f => ToDto(f, counts.GetValueOrDefault(f.Id))).ToList()));
    }

    public static async Task<Results<Created<FolderDto>, ProblemHttpResult, ValidationProblem>> CreateFolderAsync(
        ClaimsPrincipal user, AppDbContext db, IOptions<LimitsOptions> limits, JackcwfMetrics metrics, FolderRequest? request, CancellationToken ct)
    {
        if (ValidName(request?.Name) is not { } name)
        {
            return InvalidName();
        }
        var userId = user.Id();
        var names = await db.Folders.Where(f => f.UserId == userId).Select(f => f.Name).ToListAsync(ct);
        if (names.Count >= limits.Value.MaxFoldersPerUser)
        {
            metrics.LimitRefused("folders");
            return Problems.LimitReached("folder_limit", "folders", "Folder limit reached",
                $"An account has at most {limits.Value.MaxFoldersPerUser} folders. Delete one to make room.");
        }
        if (names.Contains(name, StringComparer.CurrentCultureIgnoreCase))
        {
            return Taken(name);
        }
        var now = Clock.UtcNow();
        var folder = new Folder { Id = Clock.NewId(), UserId = userId, Name = name, CreatedAt = now, UpdatedAt = now };
        db.Folders.Add(folder);
        await db.SaveChangesAsync(ct);
        return TypedResults.Created($"/api/folders/{folder.Id}", ToDto(folder, 0));
    }

    public static async Task<Results<Ok<FolderDto>, ProblemHttpResult, ValidationProblem>> RenameFolderAsync(
        ClaimsPrincipal user, AppDbContext db, Guid id, FolderRequest? request, CancellationToken ct)
    {
        if (ValidName(request?.Name) is not { } name)
        {
            return InvalidName();
        }
        var userId = user.Id();
        var folder = await db.Folders.FirstOrDefaultAsync(f => f.Id == id && f.UserId == userId, ct);
        if (folder is null)
        {
            return Problems.NotFound("folder");
        }
        if (await db.Folders.Where(f => f.UserId == userId && f.Id != id).Select(f => f.Name).ToListAsync(ct) is var others
            && others.Contains(name, StringComparer.CurrentCultureIgnoreCase))
        {
            return Taken(name);
        }
        folder.Name = name;
        folder.UpdatedAt = Clock.UtcNow();
        await db.SaveChangesAsync(ct);
        var count = await db.Conversations.CountAsync(c => c.FolderId == id, ct);
        return TypedResults.Ok(ToDto(folder, count));
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> DeleteFolderAsync(ClaimsPrincipal user, AppDbContext db, Guid id, CancellationToken ct)
    {
        var userId = user.Id();
        // The foreign key (ON DELETE SET NULL) moves the conversations out in the same statement.
        var deleted = await db.Folders.Where(f => f.Id == id && f.UserId == userId).ExecuteDeleteAsync(ct);
        return deleted == 0 ? Problems.NotFound("folder") : TypedResults.NoContent();
    }

    /// <summary>Whether the caller owns the folder: the check before a conversation is moved into it.</summary>
    internal static Task<bool> OwnsAsync(AppDbContext db, Guid userId, Guid folderId, CancellationToken ct) =>
        db.Folders.AnyAsync(f => f.Id == folderId && f.UserId == userId, ct);

    private static FolderDto ToDto(Folder f, int count) => new(f.Id, f.Name, count, f.CreatedAt, f.UpdatedAt);

    private static string? ValidName(string? name) => name?.Trim() is { Length: > 0 and <= MaxNameLength } n && !n.Any(char.IsControl) ? n : null;

    private static ValidationProblem InvalidName() =>
        Problems.Invalid("name", $"is required: 1 to {MaxNameLength} characters, no control characters");

    private static ProblemHttpResult Taken(string name) =>
        Problems.Conflict($"name: you already have a folder called \"{name}\".");
}
