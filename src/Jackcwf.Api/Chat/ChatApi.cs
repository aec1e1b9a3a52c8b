using System.Diagnostics;
using System.Globalization;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using Jackcwf.Api.Accounts;
using Jackcwf.Api.Ai;
using Jackcwf.Api.Ai.Pipeline;
using Jackcwf.Api.Configuration;
using Jackcwf.Api.Conversations;
using Jackcwf.Api.Data;
using Jackcwf.Api.Files;
using Jackcwf.Api.Telemetry;
using Jackcwf.Api.Web;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Chat;

public static class ChatApi
{
    public const string IdempotencyHeader = "Idempotency-Key";
    /// <summary>The route an idempotency record belongs to (<see cref="IdempotencyRecord.Route"/>).</summary>
    public const string SendMessageRoute = "SendMessage";

    public static IEndpointRouteBuilder MapChatApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/conversations/{id:guid}/messages").WithTags("Messages").RequireAuthorization();
        api.MapPost("/", SendMessageAsync).WithName(SendMessageRoute)
            .WithSummary("Send a message; the answer streams as Server-Sent Events when Accept names text/event-stream, else JSON when done.")
            .Produces<SendMessageResponse>(StatusCodes.Status200OK, "application/json", "text/event-stream");
        api.MapGet("/{messageId:guid}/events", ResumeAsync).WithName("ResumeStream")
            .WithSummary("Resume an answer's stream after Last-Event-ID, on any replica.")
            .Produces(StatusCodes.Status200OK, contentType: "text/event-stream");
        api.MapPost("/{messageId:guid}/stop", StopAsync).WithName("StopGeneration").WithSummary("Stop a running answer (202); 409 when it already finished.");
        return app;
    }

    public static async Task<IResult> SendMessageAsync(
        HttpContext http, ClaimsPrincipal user, Guid id, SendMessageRequest? request,
        AppDbContext db, ModelCatalog catalog, GenerationRunner runner, IGenerationEventLog log, JackcwfMetrics metrics,
        IOptions<LimitsOptions> limits, IOptions<ChatSettings> settings, Limits.LimitGuard guard,
        DocumentRetrieval documents, IOptions<FilesOptions> files, CancellationToken ct)
    {
        var accepted = Stopwatch.GetTimestamp();
        if (request is null)
        {
            return Problems.Invalid("content", "is required");
        }
        var key = http.Request.Headers[IdempotencyHeader].ToString();
        if (key.Length > 200 || key.Any(char.IsControl))
        {
            return Problems.Invalid(IdempotencyHeader, "must be at most 200 printable characters");
        }
        var model = request.Model is null ? null : catalog.Find(request.Model);
        if (request.Model is not null && model is null)
        {
            return Problems.Invalid("model", $"unknown model \"{ConversationsApi.Truncate(request.Model)}\"; GET /api/models lists the available ones");
        }
        var max = limits.Value.MaxMessageChars;
        if (request.Content is { } content && content.Length > max)
        {
            metrics.LimitRefused("input_size");
            return Problems.Invalid("content", $"must be at most {max} characters (got {content.Length})");
        }
        var userId = user.Id();
        var streaming = WantsEventStream(http.Request);

        var conversation = await db.Conversations.FirstOrDefaultAsync(c => c.Id == id && c.UserId == userId, ct);
        if (conversation is null)
        {
            return Problems.NotFound("conversation");
        }

        var hash = RequestHash(request);
        if (streaming && await TakeStreamSlotAsync(http, guard, userId) is { } tooManyStreams)
        {
            return tooManyStreams;
        }
        if (key.Length > 0)
        {
            if (await db.IdempotencyRecords.AsNoTracking().FirstOrDefaultAsync(r => r.UserId == userId && r.Key == key, ct) is { } known)
            {
                return await ReplayAsync(http, known, id, hash, db, runner, log, metrics, settings.Value, ct);
            }
            metrics.Cache("idempotency", hit: false);
        }
        if (runner.IsShuttingDown)
        {
            http.Response.Headers.RetryAfter = "1";
            return Problems.Result(StatusCodes.Status503ServiceUnavailable, "draining", "This server is restarting", "Send the request again (with the same Idempotency-Key); another server will take it.");
        }

        // The branch structure without message text: the text is read only for the context window.
        var nodes = (await ContextWindow.LoadNodesAsync(db, id, ct)).ToDictionary(m => m.Id);
        Guid? parentId;
        if (request.ParentMessageId.IsSet)
        {
            parentId = request.ParentMessageId.Value;
            if (parentId is { } p && !nodes.ContainsKey(p))
            {
                return Problems.Invalid("parentMessageId", "is not a message of this conversation");
            }
        }
        else
        {
            parentId = nodes.Count == 0 ? null : nodes.Values.MaxBy(m => m.CreatedAt)!.Id;
        }

        // Regenerate: a parent that is a user message and no content → a new answer to that message.
        var regenerate = parentId is { } pid && nodes[pid].Role == MessageRoles.User && string.IsNullOrEmpty(request.Content);
        if (!regenerate && string.IsNullOrWhiteSpace(request.Content))
        {
            return Problems.Invalid("content", "is required and must not be blank");
        }
        if (await ConversationQuota.CheckAsync(db, limits.Value, metrics, userId, id, regenerate ? 1 : 2, regenerate ? 0 : request.Content!.Length, ct) is { } full)
        {
            return full;
        }
        model ??= catalog.Find(conversation.Model) ?? catalog.Default;
        if (await guard.CheckBudgetAsync(userId, model) is { } overBudget)
        {
            return Refused(http, overBudget);
        }
        // Files named on the message join the conversation's (saved with the messages below).
        List<Guid> attached;
        if (request.FileIds is { Count: > 0 } fileIds)
        {
            (var staged, var problem) = await Attachments.StageAsync(db, userId, id, fileIds, replace: false, files.Value.MaxFilesPerConversation, ct);
            if (problem is not null)
            {
                return problem;
            }
            attached = staged!;
        }
        else
        {
            attached = await Attachments.ListAsync(db, id, ct);
        }

        var now = Clock.UtcNow();
        Message userMessage;
        if (regenerate)
        {
            userMessage = await db.Messages.AsNoTracking().FirstAsync(m => m.Id == parentId, ct);
        }
        else
        {
            userMessage = new Message
            {
                Id = Clock.NewId(), ConversationId = id, UserId = userId, ParentMessageId = parentId, Role = MessageRoles.User,
                Content = request.Content!, Status = MessageStatuses.Complete, CreatedAt = now, UpdatedAt = now, CompletedAt = now,
            };
            db.Messages.Add(userMessage);
        }
        Retrieval? retrieval;
        try
        {
            retrieval = await documents.RetrieveAsync(db, userId, attached, userMessage.Content, ct);
        }
        catch (ProviderException)
        {
            http.Response.Headers.RetryAfter = "5";
            return Problems.Result(StatusCodes.Status503ServiceUnavailable, "embedding_unavailable", "The embedding model is unavailable",
                "This conversation's files cannot be searched right now; try again shortly.");
        }
        var assistantAt = Clock.UtcNow();
        var assistant = new Message
        {
            Id = Clock.NewId(), ConversationId = id, UserId = userId, ParentMessageId = userMessage.Id, Role = MessageRoles.Assistant,
            Content = "", Status = MessageStatuses.Streaming, Model = model.Id, CreatedAt = assistantAt, UpdatedAt = assistantAt,
            OwnerInstance = runner.InstanceId, LeaseExpiresAt = assistantAt.AddSeconds(settings.Value.LeaseSeconds),
            Sources = MessageDto.WriteSources(retrieval?.Sources),
        };
        db.Messages.Add(assistant);
        conversation.UpdatedAt = assistantAt;
        if (string.IsNullOrWhiteSpace(conversation.Title))
        {
            conversation.Title = TitleFrom(userMessage.Content);
        }
        if (key.Length > 0)
        {
            db.IdempotencyRecords.Add(new IdempotencyRecord
            {
                UserId = userId, Key = key, RequestHash = hash, ConversationId = id, Route = SendMessageRoute,
                UserMessageId = userMessage.Id, AssistantMessageId = assistant.Id, CreatedAt = now,
            });
        }
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException) when (key.Length > 0)
        {
            // Another request with the same key won the race (here or on another replica): answer as it does.
            db.ChangeTracker.Clear();
            var winner = await db.IdempotencyRecords.AsNoTracking().FirstOrDefaultAsync(r => r.UserId == userId && r.Key == key, ct);
            if (winner is null)
            {
                throw;
            }
            return await ReplayAsync(http, winner, id, hash, db, runner, log, metrics, settings.Value, ct);
        }
        // The slot is taken only once this request has won its Idempotency-Key: duplicates replay, they never count.
        var (slot, refusal) = await guard.TakeSlotAsync(userId);
        if (refusal is not null)
        {
            // Refused requests keep nothing: remove what was just stored.
            await db.IdempotencyRecords.Where(r => r.UserId == userId && r.Key == key).ExecuteDeleteAsync(CancellationToken.None);
            await db.Messages.Where(m => m.Id == assistant.Id || (!regenerate && m.Id == userMessage.Id)).ExecuteDeleteAsync(CancellationToken.None);
            return Refused(http, refusal);
        }
        if (!regenerate)
        {
            metrics.MessageCreated(MessageRoles.User);
        }
        metrics.MessageCreated(MessageRoles.Assistant);

        var history = await ContextWindow.BuildAsync(db, limits.Value, conversation.SystemPrompt, nodes, userMessage, ct);
        var cache = CacheDirectives.FromHeader(http.Request.Headers.CacheControl);
        if (regenerate && cache == CacheDirective.Default)
        {
            // A new answer to the same question is asked for because the last one was not wanted: never replay it.
            cache = CacheDirective.NoCache;
        }
        if (retrieval is not null)
        {
            // The excerpts come right before the message they were chosen for.
            history.Insert(history.Count - 1, retrieval.Context);
        }
        var generation = runner.Start(new GenerationRequest(
            assistant.Id, id, userId, userMessage.Id, assistantAt, model, history, accepted, guard.Options.MaxOutputTokens,
            user.ApiKeyId(), slot, cache, retrieval?.Sources));

        var userDto = MessageDto.From(userMessage);
        if (streaming)
        {
            return new StreamResult(userDto, assistant.Id, id, 0, runner, log, db, settings.Value, user, generation.CacheDecision);
        }
        return await JsonOutcomeAsync(userDto, generation.Outcome, http, ct);
    }

    public static async Task<IResult> ResumeAsync(
        HttpContext http, ClaimsPrincipal user, Guid id, Guid messageId, string? lastEventId,
        AppDbContext db, GenerationRunner runner, IGenerationEventLog log, JackcwfMetrics metrics, IOptions<ChatSettings> settings,
        Limits.LimitGuard guard, CancellationToken ct)
    {
        var raw = http.Request.Headers["Last-Event-ID"].ToString();
        if (raw.Length == 0)
        {
            raw = lastEventId ?? "";
        }
        var offset = 0;
        if (raw.Length > 0 && (!int.TryParse(raw, NumberStyles.None, CultureInfo.InvariantCulture, out offset) || offset < 0))
        {
            return Problems.Invalid("Last-Event-ID", "is not an event id sent by this stream");
        }
        var userId = user.Id();
        var exists = await db.Messages.AsNoTracking().AnyAsync(
            m => m.Id == messageId && m.ConversationId == id && m.UserId == userId && m.Role == MessageRoles.Assistant, ct);
        if (!exists)
        {
            return Problems.NotFound("message");
        }
        if (await TakeStreamSlotAsync(http, guard, userId) is { } tooManyStreams)
        {
            return tooManyStreams;
        }
        if (raw.Length > 0)
        {
            metrics.StreamResumed();
        }
        return new StreamResult(null, messageId, id, offset, runner, log, db, settings.Value, user);
    }

    public static async Task<Results<Accepted, ProblemHttpResult>> StopAsync(
        ClaimsPrincipal user, Guid id, Guid messageId, AppDbContext db, GenerationRunner runner, IStopSignal stops, CancellationToken ct)
    {
        var userId = user.Id();
        var m = await db.Messages.AsNoTracking()
            .Where(x => x.Id == messageId && x.ConversationId == id && x.UserId == userId && x.Role == MessageRoles.Assistant)
            .Select(x => new { x.Status, x.LeaseExpiresAt })
            .FirstOrDefaultAsync(ct);
        if (m is null)
        {
            return Problems.NotFound("message");
        }
        if (m.Status != MessageStatuses.Streaming)
        {
            return Problems.Conflict($"The answer already finished with status {m.Status}.");
        }
        if (!runner.TryStop(messageId))
        {
            await stops.PublishAsync(messageId);
            if (m.LeaseExpiresAt < Clock.UtcNow())
            {
                // Nobody owns it any more: settle it here.
                await db.Messages.Where(x => x.Id == messageId && x.Status == MessageStatuses.Streaming)
                    .ExecuteUpdateAsync(u => u.SetProperty(x => x.Status, MessageStatuses.Stopped).SetProperty(x => x.CompletedAt, Clock.UtcNow()), ct);
            }
        }
        return TypedResults.Accepted((string?)null);
    }

    private static async Task<IResult> ReplayAsync(
        HttpContext http, IdempotencyRecord record, Guid conversationId, string hash, AppDbContext db, GenerationRunner runner,
        IGenerationEventLog log, JackcwfMetrics metrics, ChatSettings settings, CancellationToken ct)
    {
        // A key is bound to its route and conversation: the same body elsewhere is a different request.
        if (record.ConversationId != conversationId || (record.Route ?? SendMessageRoute) != SendMessageRoute)
        {
            return Problems.Result(StatusCodes.Status422UnprocessableEntity, "idempotency_key_reused", "Idempotency-Key reused for another request",
                "This Idempotency-Key was already used for a message in another conversation or on another route; use a new key for a new message.");
        }
        if (record.RequestHash != hash)
        {
            return Problems.Result(StatusCodes.Status422UnprocessableEntity, "idempotency_key_reused", "Idempotency-Key reused with a different request",
                "This Idempotency-Key was already used for a different message; use a new key for a new message.");
        }
        metrics.Cache("idempotency", hit: true);
        var userMessage = await db.Messages.AsNoTracking().FirstAsync(m => m.Id == record.UserMessageId, ct);
        var userDto = MessageDto.From(userMessage);
        if (WantsEventStream(http.Request))
        {
            return new StreamResult(userDto, record.AssistantMessageId, record.ConversationId, 0, runner, log, db, settings, http.User);
        }
        var local = runner.Find(record.AssistantMessageId);
        if (local is not null)
        {
            return await JsonOutcomeAsync(userDto, local, http, ct);
        }
        // Running elsewhere or finished: wait on the database.
        while (true)
        {
            var a = await db.Messages.AsNoTracking().FirstAsync(m => m.Id == record.AssistantMessageId, ct);
            if (a.Status != MessageStatuses.Streaming)
            {
                return TypedResults.Ok(new SendMessageResponse(userDto, MessageDto.From(a)));
            }
            await Task.Delay(200, ct);
        }
    }

    private static async Task<IResult> JsonOutcomeAsync(MessageDto userDto, Task<GenerationOutcome> generation, HttpContext http, CancellationToken ct)
    {
        // The generation is detached: a client that goes away does not cancel it.
        var outcome = await generation.WaitAsync(ct);
        http.Response.Headers["X-Cache"] = outcome.CacheStatus;
        if (outcome.Failure is { } f)
        {
            if (f.RetryAfter is { } after)
            {
                http.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(after.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
            }
            var problem = Problems.Create(f.HttpStatus, f.Kind == "budget_exceeded" ? f.Kind : $"provider_{f.Kind}", f.Title, f.Detail);
            problem.Extensions["userMessageId"] = userDto.Id;
            problem.Extensions["messageId"] = outcome.Message.Id;
            return TypedResults.Problem(problem);
        }
        if (outcome.Message.Status == MessageStatuses.Interrupted)
        {
            http.Response.Headers.RetryAfter = "1";
        }
        return TypedResults.Ok(new SendMessageResponse(userDto, outcome.Message));
    }

    private static IResult Refused(HttpContext http, Limits.LimitRefusal refusal)
    {
        http.Response.Headers.RetryAfter = refusal.RetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
        var problem = Problems.Create(429, refusal.Limit == "budget" ? "budget_exceeded" : "rate_limited", refusal.Title, refusal.Detail);
        problem.Extensions["limit"] = refusal.Limit;
        return TypedResults.Problem(problem);
    }

    internal static bool WantsEventStream(HttpRequest request) =>
        request.Headers.Accept.ToString().Contains("text/event-stream", StringComparison.OrdinalIgnoreCase);

    private static string RequestHash(SendMessageRequest r)
    {
        var parent = r.ParentMessageId.IsSet ? r.ParentMessageId.Value?.ToString() ?? "null" : "latest";
        // Files are hashed only when named, so keys stored before files existed still match their requests.
        var files = r.FileIds is { Count: > 0 } ids ? "\u0000" + string.Join(",", ids) : "";
        var bytes = SHA256.HashData(Encoding.UTF8.GetBytes($"{r.Content}\u0000{r.Model}\u0000{parent}{files}"));
        return Convert.ToHexString(bytes);
    }

    private static string TitleFrom(string content)
    {
        var line = content.Trim().Split('\n', 2)[0].Trim();
        return line.Length <= 60 ? line : line[..57].TrimEnd() + "…";
    }

    /// <summary>Takes a stream slot for the rest of the request (released when the response ends), or the 429 refusing it.</summary>
    private static async Task<IResult?> TakeStreamSlotAsync(HttpContext http, Limits.LimitGuard guard, Guid userId)
    {
        var (slot, refusal) = await guard.TakeStreamSlotAsync(userId);
        if (slot is null)
        {
            return Refused(http, refusal!);
        }
        http.Response.RegisterForDisposeAsync(slot);
        return null;
    }
}
