using System.Security.Claims;
using Jackcwf.Api.Accounts;
using Jackcwf.Api.Data;
using Jackcwf.Api.Web;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace Jackcwf.Api.Feedback;

public static class FeedbackApi
{
    public const int MaxCommentLength = 2000;

    public static IEndpointRouteBuilder MapFeedbackApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/conversations/{id:guid}/messages/{messageId:guid}/feedback").WithTags("Feedback").RequireAuthorization();
        api.MapPut("/", SetFeedbackAsync).WithName("SetFeedback").WithSummary("Rate an answer: {rating: \"up\"|\"down\", comment?}; replaces an earlier rating.");
        api.MapDelete("/", ClearFeedbackAsync).WithName("ClearFeedback").WithSummary("Take the rating of an answer back.");
        return app;
    }

    public static async Task<Results<Ok<FeedbackDto>, ProblemHttpResult, ValidationProblem>> SetFeedbackAsync(
        ClaimsPrincipal user, AppDbContext db, Guid id, Guid messageId, FeedbackRequest? request, CancellationToken ct)
    {
        var errors = new Dictionary<string, string[]>();
        if (request?.Rating is not (FeedbackRatings.Up or FeedbackRatings.Down))
        {
            errors["rating"] = ["must be \"up\" or \"down\""];
        }
        if (request?.Comment is { Length: > MaxCommentLength })
        {
            errors["comment"] = [$"must be at most {MaxCommentLength} characters"];
        }
        if (errors.Count > 0)
        {
            return Problems.Invalid(errors);
        }
        var userId = user.Id();
        var message = await db.Messages.AsNoTracking()
            .Where(m => m.Id == messageId && m.ConversationId == id && m.UserId == userId)
            .Select(m => new { m.Role, m.Model }).FirstOrDefaultAsync(ct);
        if (message is null)
        {
            return Problems.NotFound("message");
        }
        if (message.Role != MessageRoles.Assistant)
        {
            return Problems.Invalid("messageId", "only an assistant's answer takes feedback");
        }
        var now = Clock.UtcNow();
        var feedback = await db.MessageFeedback.FirstOrDefaultAsync(f => f.MessageId == messageId, ct);
        if (feedback is null)
        {
            feedback = new MessageFeedback { MessageId = messageId, UserId = userId, ConversationId = id, CreatedAt = now };
            db.MessageFeedback.Add(feedback);
        }
        feedback.Model = message.Model ?? "";
        feedback.Rating = request!.Rating!;
        feedback.Comment = string.IsNullOrWhiteSpace(request.Comment) ? null : request.Comment.Trim();
        feedback.UpdatedAt = now;
        await db.SaveChangesAsync(ct);
        return TypedResults.Ok(FeedbackDto.From(feedback));
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> ClearFeedbackAsync(
        ClaimsPrincipal user, AppDbContext db, Guid id, Guid messageId, CancellationToken ct)
    {
        var userId = user.Id();
        if (!await db.Messages.AnyAsync(m => m.Id == messageId && m.ConversationId == id && m.UserId == userId, ct))
        {
            return Problems.NotFound("message");
        }
        await db.MessageFeedback.Where(f => f.MessageId == messageId).ExecuteDeleteAsync(ct);
        return TypedResults.NoContent();
    }

    /// <summary>The ratings of the given messages (a page or batch of one conversation), by message id.</summary>
    internal static async Task<Dictionary<Guid, FeedbackDto>> ForMessagesAsync(AppDbContext db, IReadOnlyList<Message> messages, CancellationToken ct)
    {
        var ids = messages.Where(m => m.Role == MessageRoles.Assistant).Select(m => m.Id).ToList();
        if (ids.Count == 0)
        {
            return [];
        }
        return await db.MessageFeedback.AsNoTracking().Where(f => ids.Contains(f.MessageId))
            .ToDictionaryAsync(f => f.MessageId, FeedbackDto.From, ct);
    }
}
