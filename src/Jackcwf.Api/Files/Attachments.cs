using Jackcwf.Api.Data;
using Jackcwf.Api.ErrorHandling;
using Jackcwf.Api.Web;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace Jackcwf.Api.Files;

/// <summary>Which files a conversation searches: read, and changed from the conversation and message routes.</summary>
public static class Attachments
{
    public const string Field = "fileIds";

    public static Task<List<Guid>> ListAsync(AppDbContext db, Guid conversationId, CancellationToken ct) =>
        db.Set<ConversationFile>().AsNoTracking().Where(a => a.ConversationId == conversationId)
            .OrderBy(a => a.CreatedAt).Select(a => a.FileId).ToListAsync(ct);

    public static async Task<ILookup<Guid, Guid>> ForConversationsAsync(AppDbContext db, IReadOnlyCollection<Guid> conversationIds, CancellationToken ct) =>
        conversationIds.Count == 0
            ? Array.Empty<Guid>().ToLookup(x => x)
            : (await db.Set<ConversationFile>().AsNoTracking().Where(a => conversationIds.Contains(a.ConversationId))
                .OrderBy(a => a.CreatedAt).Select(a => new { a.ConversationId, a.FileId }).ToListAsync(ct))
                .ToLookup(a => a.ConversationId, a => a.FileId);

    /// <summary>
    /// Stages (in <paramref name="db"/>, saved by the caller) the attachment of <paramref name="fileIds"/>: added to the
    /// current ones, or replacing them when <paramref name="replace"/>. Returns the resulting set, or the problem
    /// (400 too many, 404 a file that is not the caller's) and stages nothing.
    /// </summary>
    public static async Task<(List<Guid>? Attached, ProblemHttpResult? Problem)> StageAsync(
        AppDbContext db, Guid userId, Guid conversationId, IReadOnlyList<Guid> fileIds, bool replace, int maxPerConversation, DateTime now, CancellationToken ct)
    {
        var wanted = fileIds.Distinct().ToList();
        if (wanted.Count > maxPerConversation)
        {
            return (null, Invalid($"must hold at most {maxPerConversation} files (FILES_MAX_PER_CONVERSATION)"));
        }
        if (!await FilesApi.AllOwnedAsync(db, userId, wanted, ct))
        {
            return (null, Problems.NotFound("file"));
        }
        var current = await ListAsync(db, conversationId, ct);
        var result = replace ? wanted : current.Concat(wanted.Where(id => !current.Contains(id))).ToList();
        if (result.Count > maxPerConversation)
        {
            return (null, Invalid($"a conversation holds at most {maxPerConversation} files (FILES_MAX_PER_CONVERSATION); it has {current.Count}"));
        }
        foreach (var id in result.Where(id => !current.Contains(id)))
        {
            db.Add(new ConversationFile { ConversationId = conversationId, FileId = id, UserId = userId, CreatedAt = now });
        }
        if (replace)
        {
            foreach (var id in current.Where(id => !result.Contains(id)))
            {
                db.Remove(new ConversationFile { ConversationId = conversationId, FileId = id, UserId = userId });
            }
        }
        return (result, null);
    }

    private static ProblemHttpResult Invalid(string message)
    {
        var problem = Problems.Create(StatusCodes.Status400BadRequest, "validation", "The request is invalid", $"{Field}: {message}");
        problem.Extensions["errors"] = new Dictionary<string, string[]> { [Field] = [message] };
        return TypedResults.Problem(problem);
    }
}
