using System.Diagnostics;
using System.Globalization;
using System.Security.Claims;
using Jackcwf.Api.Accounts;
using Jackcwf.Api.Ai.Pipeline;
using Jackcwf.Api.Conversations;
using Jackcwf.Api.Data;
using Jackcwf.Api.ErrorHandling;
using Jackcwf.Api.Limits;
using Jackcwf.Api.Telemetry;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Chat;

/// <summary>What the message handlers use, bound with <c>[AsParameters]</c>.</summary>
/// <remarks>
/// No database context and nothing that holds one: a streamed answer keeps the request (and its
/// scope) open for minutes, and a context rented for the whole of it cost each open stream about
/// 36 KB of heap. The turn and the resume check take theirs from <see cref="Scopes"/> and give it back
/// before the answer streams.
/// </remarks>
public sealed record ChatServices(
    HttpContext Http, ClaimsPrincipal User, [FromServices] IServiceScopeFactory Scopes, [FromServices] GenerationStream Stream,
    [FromServices] LimitGuard Guard, [FromServices] JackcwfMetrics Metrics, [FromServices] IOptions<ChatSettings> Settings);

/// <summary>
/// The message routes: send (the answer streamed as SSE or returned as JSON), resume, stop. Each
/// handler reads the request, calls one service (<see cref="ChatTurns"/>, <see cref="GenerationStream"/>)
/// and turns the outcome into a response.
/// </summary>
public static class ChatApi
{
    public const string IdempotencyHeader = "Idempotency-Key";
    /// <summary>The route an idempotency record belongs to (<see cref="IdempotencyRecord.Route"/>).</summary>
    public const string SendMessageRoute = ChatTurns.SendMessageRoute;

    public static IEndpointRouteBuilder MapChatApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/conversations/{id:guid}/messages").WithTags("Messages").RequireAuthorization();
        // The turn applies the per-minute limits itself, with its other limits in one store call (ChatTurns).
        api.MapPost("/", SendMessageAsync).WithName(SendMessageRoute).WithMetadata(RateCheckedAtAdmission.Instance)
            .WithSummary("Send a message; the answer streams as Server-Sent Events when Accept names text/event-stream, else JSON when done.")
            .Produces<SendMessageResponse>(StatusCodes.Status200OK, "application/json", "text/event-stream");
        api.MapGet("/{messageId:guid}/events", ResumeAsync).WithName("ResumeStream")
            .WithSummary("Resume an answer's stream after Last-Event-ID, on any replica.")
            .Produces(StatusCodes.Status200OK, contentType: "text/event-stream");
        api.MapPost("/{messageId:guid}/stop", StopAsync).WithName("StopGeneration").WithSummary("Stop a running answer (202); 409 when it already finished.");
        return app;
    }

    public static async Task<Results<StreamResult, Ok<SendMessageResponse>, ProblemHttpResult, ValidationProblem>> SendMessageAsync(
        Guid id, SendMessageRequest? request, [AsParameters] ChatServices services, CancellationToken ct)
    {
        var accepted = Stopwatch.GetTimestamp();
        var (http, user) = (services.Http, services.User);
        var lockoutClient = http.Items[ApiKeyAuthenticationHandler.LockoutPendingItem] as string;
        if (request is null)
        {
            // Counted in the request windows like every other answer of this route (the turn counts the others).
            if (await services.Guard.CheckRateAsync(user.Id(), user.ApiKeyId(), lockoutClient) is { } limited)
            {
                return Refused(http, limited);
            }
            return Problems.Invalid("content", "is required");
        }
        var streaming = WantsEventStream(http.Request);
        Turn turn;
        // The turn's database context lives only as long as the turn: the answer streams without one.
        await using (var scope = services.Scopes.CreateAsyncScope())
        {
            turn = await scope.ServiceProvider.GetRequiredService<ChatTurns>().StartAsync(new TurnRequest(user.Id(), user.ApiKeyId(), id, request,
                http.Request.Headers[IdempotencyHeader].ToString(), streaming, CacheDirectives.FromHeader(http.Request.Headers.CacheControl), accepted,
                lockoutClient), ct);
        }
        if (turn.StreamSlot is { } slot)
        {
            http.Response.RegisterForDisposeAsync(slot);
        }
        if (turn.Refusal is { } refused)
        {
            SetRetryAfter(http, refused.RetryAfterSeconds);
            return refused.Invalid is { } invalid ? invalid : refused.Problem!;
        }
        if (streaming)
        {
            return new StreamResult(turn.User, turn.AssistantId, id, 0, services.Stream, user, turn.CacheDecision);
        }
        return turn.Generation is { } running
            ? AnswerResult(http, turn.User!, await running.WaitAsync(ct))
            : await StoredAnswerAsync(http, services, turn, ct);
    }

    public static async Task<Results<StreamResult, ProblemHttpResult, ValidationProblem>> ResumeAsync(
        Guid id, Guid messageId, string? lastEventId, [AsParameters] ChatServices services, CancellationToken ct)
    {
        var (http, userId) = (services.Http, services.User.Id());
        var raw = http.Request.Headers["Last-Event-ID"].ToString() is { Length: > 0 } header ? header : lastEventId ?? "";
        var offset = 0;
        if (raw.Length > 0 && (!int.TryParse(raw, NumberStyles.None, CultureInfo.InvariantCulture, out offset) || offset < 0))
        {
            return Problems.Invalid("Last-Event-ID", "is not an event id sent by this stream");
        }
        bool exists;
        await using (var scope = services.Scopes.CreateAsyncScope())
        {
            exists = await scope.ServiceProvider.GetRequiredService<AppDbContext>().Messages.AsNoTracking().AnyAsync(
                m => m.Id == messageId && m.ConversationId == id && m.UserId == userId && m.Role == MessageRoles.Assistant, ct);
        }
        if (!exists)
        {
            return Problems.NotFound("message");
        }
        var (slot, tooManyStreams) = await services.Guard.TakeStreamSlotAsync(userId);
        if (tooManyStreams is not null)
        {
            return Refused(http, tooManyStreams);
        }
        http.Response.RegisterForDisposeAsync(slot!);
        if (raw.Length > 0)
        {
            services.Metrics.StreamResumed();
        }
        return new StreamResult(null, messageId, id, offset, services.Stream, services.User);
    }

    public static async Task<Results<Accepted, ProblemHttpResult>> StopAsync(
        ClaimsPrincipal user, Guid id, Guid messageId, AppDbContext db, GenerationRunner runner, IStopSignal stops, TimeProvider time, CancellationToken ct)
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
            if (m.LeaseExpiresAt < time.UtcNowForStorage())
            {
                // Nobody owns it any more: settle it here.
                await db.Messages.Where(x => x.Id == messageId && x.Status == MessageStatuses.Streaming)
                    .ExecuteUpdateAsync(u => u.SetProperty(x => x.Status, MessageStatuses.Stopped).SetProperty(x => x.CompletedAt, time.UtcNowForStorage()), ct);
            }
        }
        return TypedResults.Accepted((string?)null);
    }

    /// <summary>
    /// A replayed JSON answer that runs on another replica or has finished: follows the database for at
    /// most <see cref="ChatSettings.ReplayWaitSeconds"/>, then answers 503 with the message id to resume.
    /// </summary>
    private static async Task<Results<StreamResult, Ok<SendMessageResponse>, ProblemHttpResult, ValidationProblem>> StoredAnswerAsync(
        HttpContext http, ChatServices services, Turn turn, CancellationToken ct)
    {
        var wait = TimeSpan.FromSeconds(services.Settings.Value.ReplayWaitSeconds);
        if (await services.Stream.WaitForStoredAsync(turn.AssistantId, wait, ct) is { } stored)
        {
            return TypedResults.Ok(new SendMessageResponse(turn.User!, MessageDto.From(stored)));
        }
        SetRetryAfter(http, 1);
        var problem = Problems.Create(StatusCodes.Status503ServiceUnavailable, "answer_pending", "The answer is still being generated",
            $"It did not finish within {wait.TotalSeconds:0} s. Send the same request again (with the same Idempotency-Key), or follow its stream.");
        problem.Extensions["userMessageId"] = turn.User!.Id;
        problem.Extensions["messageId"] = turn.AssistantId;
        return TypedResults.Problem(problem);
    }

    /// <summary>The JSON answer of a generation that ran here: the messages, or the provider's problem.</summary>
    private static Results<StreamResult, Ok<SendMessageResponse>, ProblemHttpResult, ValidationProblem> AnswerResult(
        HttpContext http, MessageDto userDto, GenerationOutcome outcome)
    {
        http.Response.Headers["X-Cache"] = outcome.CacheStatus;
        if (outcome.Failure is { } f)
        {
            if (f.RetryAfter is { } after)
            {
                SetRetryAfter(http, Math.Max(1, (int)Math.Ceiling(after.TotalSeconds)));
            }
            var problem = Problems.Create(f.HttpStatus, f.Kind == "budget_exceeded" ? f.Kind : $"provider_{f.Kind}", f.Title, f.Detail);
            problem.Extensions["userMessageId"] = userDto.Id;
            problem.Extensions["messageId"] = outcome.Message.Id;
            return TypedResults.Problem(problem);
        }
        if (!outcome.Stored)
        {
            // The answer's row was gone at its final write (the conversation deleted meanwhile, or the turn lost
            // with a crash or failover of PostgreSQL): nothing of it is stored, so it is not answered as a success.
            SetRetryAfter(http, 1);
            var problem = Problems.Create(503, "answer_not_stored", "The answer could not be stored", "Send the message again.");
            problem.Extensions["userMessageId"] = userDto.Id;
            problem.Extensions["messageId"] = outcome.Message.Id;
            return TypedResults.Problem(problem);
        }
        if (outcome.Message.Status == MessageStatuses.Interrupted)
        {
            SetRetryAfter(http, 1);
        }
        return TypedResults.Ok(new SendMessageResponse(userDto, outcome.Message));
    }

    private static ProblemHttpResult Refused(HttpContext http, LimitRefusal refusal)
    {
        SetRetryAfter(http, refusal.RetryAfterSeconds);
        var problem = Problems.Create(429, refusal.Limit == "budget" ? "budget_exceeded" : "rate_limited", refusal.Title, refusal.Detail);
        problem.Extensions["limit"] = refusal.Limit;
        return TypedResults.Problem(problem);
    }

    private static void SetRetryAfter(HttpContext http, int? seconds)
    {
        if (seconds is { } s)
        {
            http.Response.Headers.RetryAfter = s.ToString(CultureInfo.InvariantCulture);
        }
    }

    internal static bool WantsEventStream(HttpRequest request) =>
        request.Headers.Accept.ToString().Contains("text/event-stream", StringComparison.OrdinalIgnoreCase);
}
