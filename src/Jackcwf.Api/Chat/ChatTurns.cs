using System.Security.Cryptography;
using System.Text;
using Jackcwf.Api.Ai;
using Jackcwf.Api.Ai.Pipeline;
using Jackcwf.Api.Conversations;
using Jackcwf.Api.Data;
using Jackcwf.Api.ErrorHandling;
using Jackcwf.Api.Files;
using Jackcwf.Api.Limits;
using Jackcwf.Api.Telemetry;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Chat;

/// <summary>One message sent to a conversation, as the HTTP layer read it.</summary>
/// <param name="IdempotencyKey">Empty when the client sent none.</param>
/// <param name="Streaming">The answer goes out as Server-Sent Events: the turn holds one of the account's stream slots.</param>
/// <param name="LockoutClient">The address whose unknown-key lockout the authentication left to the limits (checked with the request windows).</param>
public sealed record TurnRequest(
    Guid UserId, Guid? ApiKeyId, Guid ConversationId, SendMessageRequest Message, string IdempotencyKey, bool Streaming,
    CacheDirective Cache, long AcceptedTimestamp, string? LockoutClient = null);

/// <summary>Why a turn was not started: the problem (a validation problem or another), and when to try again if it says.</summary>
public sealed record TurnRefusal(ProblemHttpResult? Problem, ValidationProblem? Invalid = null, int? RetryAfterSeconds = null);

/// <summary>
/// A started (or, for a repeated Idempotency-Key, replayed) turn: the user's message and the answer's
/// id; <see cref="Generation"/> while the answer runs on this replica. <see cref="StreamSlot"/> is
/// held until the response ends, refused or not.
/// </summary>
public sealed record Turn(
    TurnRefusal? Refusal, MessageDto? User = null, Guid AssistantId = default, Task<GenerationOutcome>? Generation = null,
    Task<string>? CacheDecision = null, GenerationSlot? StreamSlot = null);

/// <summary>
/// Starts a turn as one unit: checks the request and the limits (request windows, stream slot, quota,
/// budget, concurrency), stores the user's message, the answer's placeholder, the conversation's new
/// time and title, attached files and the Idempotency-Key in one transaction that commits only once the
/// limits admitted the turn, and starts the generation. Refusals store nothing (no store-then-delete).
/// The reads and the write run on one database connection taken from the pool once per turn. The
/// limits are one store call (<see cref="LimitGuard.AdmitTurnAsync"/>: one Redis round trip) made once the
/// turn is staged (for the common turn, before its one write command); an answer given before that (a refusal, a replay) is counted in
/// the request windows, and checked against the stream slot, by one call of its own
/// (<see cref="LimitGuard.AdmitAnswerAsync"/>), so every answer meets the limits in the order it always did.
/// </summary>
public sealed class ChatTurns(
    AppDbContext db, ModelCatalog catalog, GenerationRunner runner, LimitGuard guard, DocumentRetrieval documents, JackcwfMetrics metrics,
    ChatClientProvider clients, IOptions<LimitsOptions> limits, IOptions<FilesOptions> files, IOptions<ChatSettings> settings, TimeProvider time)
{
    /// <summary>The route an idempotency record belongs to (<see cref="IdempotencyRecord.Route"/>).</summary>
    public const string SendMessageRoute = "SendMessage";

    /// <summary>The turn's admission counted the request in its windows (so its answer is not counted again).</summary>
    private bool _counted;

    public async Task<Turn> StartAsync(TurnRequest request, CancellationToken ct)
    {
        if (Validate(request) is { } invalid)
        {
            // Checked before any limit but the request windows: an invalid request holds no slot.
            return await CountedAsync(request, new Turn(new TurnRefusal(null, invalid)), streamSlot: false);
        }
        Turn turn;
        await db.Database.OpenConnectionAsync(ct);
        try
        {
            turn = await StartOnConnectionAsync(request, ct);
        }
        catch when (!_counted)
        {
            // The request still counts in its windows, as every answer does.
            await guard.CheckRateAsync(request.UserId, request.ApiKeyId, request.LockoutClient);
            throw;
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }
        return _counted ? turn : await CountedAsync(request, turn, streamSlot: request.Streaming);
    }

    /// <summary>
    /// An answer given before the turn's admission: counted in the request windows and, when it streams
    /// (<paramref name="streamSlot"/>), checked against the account's stream slots, in one store call. A
    /// replayed stream keeps the slot until its response ends; a refusal gives it back at once.
    /// </summary>
    private async Task<Turn> CountedAsync(TurnRequest request, Turn answer, bool streamSlot)
    {
        var admission = await guard.AdmitAnswerAsync(request.UserId, request.ApiKeyId, request.LockoutClient, streamSlot);
        if (admission.Refusal is { } refusal)
        {
            return new Turn(Refused(refusal));
        }
        if (answer.Refusal is null)
        {
            return answer with { StreamSlot = admission.StreamSlot };
        }
        if (admission.StreamSlot is { } held)
        {
            await held.DisposeAsync();
        }
        return answer;
    }

    private ValidationProblem? Validate(TurnRequest request)
    {
        var key = request.IdempotencyKey;
        if (key.Length > 200 || key.Any(char.IsControl))
        {
            return Problems.Invalid(ChatApi.IdempotencyHeader, "must be at most 200 printable characters");
        }
        var body = request.Message;
        if (body.Model is not null && catalog.Find(body.Model) is null)
        {
            return Problems.Invalid("model", $"unknown model \"{ConversationsApi.Truncate(body.Model)}\"; GET /api/models lists the available ones");
        }
        var max = limits.Value.MaxMessageChars;
        if (body.Content is { } content && content.Length > max)
        {
            metrics.LimitRefused("input_size");
            return Problems.Invalid("content", $"must be at most {max} characters (got {content.Length})");
        }
        return null;
    }

    /// <summary>
    /// The turn's reads, its write and the limits' admission (request windows, stream slot, budget,
    /// concurrency slot, in one store call). The common turn is admitted first and then writes in one command
    /// (<see cref="CommonTurnAsync"/>). Any other turn is one transaction: its reads (on PostgreSQL), the staged
    /// rows, then the admission, and only then the commit. A refusal rolls it back, so nothing is
    /// stored and nothing is deleted. A duplicate of the same Idempotency-Key waits on the key's unique
    /// index until the first commits, then fails and replays it: duplicates never take a generation slot. Retried as a
    /// unit on a failover (EF's rule for a transaction of our own); the rows keep their ids.
    /// </summary>
    private async Task<Turn> StartOnConnectionAsync(TurnRequest request, CancellationToken ct)
    {
        var (userId, key) = (request.UserId, request.IdempotencyKey);
        Turn? done = null;
        Staged? staged = null;
        CallAdmission? admission = null;
        var duplicate = false;
        // A failed save rolls the whole transaction back: no savepoint around it (two statements fewer).
        db.Database.AutoSavepointsEnabled = false;
        // The context's own strategy, as its queries and BatchCommands use (one per pooled context, reset at each
        // ExecuteAsync): CreateExecutionStrategy() makes a new one each time, which seeds a Random from the kernel.
        await db.GetService<IExecutionStrategy>().ExecuteAsync(async () =>
        {
            (done, staged, admission, duplicate) = (null, null, null, false);
            db.ChangeTracker.Clear();
            // The common turn (no Idempotency-Key, no files named) cannot meet a duplicate, so it is admitted
            // before anything is written and then writes in one command (CommonTurnAsync): its reads need no
            // transaction around them. Any other turn: on PostgreSQL the reads are in the transaction too (Npgsql
            // sends BEGIN with the first query, so it costs no round trip of its own). SQLite's transaction takes
            // the database's one write lock as it begins: there it begins after the reads, so other writers never
            // wait on them.
            var common = key.Length == 0 && request.Message.FileIds is not { Count: > 0 };
            var readsInside = db.Provider == DatabaseProvider.PostgreSql && !common;
            await using var transaction = readsInside ? await db.Database.BeginTransactionAsync(ct) : null;
            var outcome = await StageAsync(request, ct);
            if (outcome.Turn is not null)
            {
                // Refused or replayed: the reads end with the transaction, nothing was written.
                done = outcome.Turn;
                return;
            }
            staged = outcome.Staged;
            if (common)
            {
                admission = await CommonTurnAsync(request, staged!, ct);
                return;
            }
            await using var late = readsInside ? null : await db.Database.BeginTransactionAsync(ct);
            try
            {
                await db.SaveChangesAsync(acceptAllChangesOnSuccess: false, ct);
            }
            catch (DbUpdateException) when (key.Length > 0)
            {
                duplicate = true;
                return;
            }
            admission = await guard.AdmitTurnAsync(userId, request.ApiKeyId, request.LockoutClient, request.Streaming, staged!.ReservedCost);
            _counted = true;
            if (admission.Refusal is not null)
            {
                return;
            }
            try
            {
                await (transaction ?? late)!.CommitAsync(ct);
            }
            catch
            {
                var taken = admission;
                admission = null;
                await guard.ReleaseAsync(taken);
                throw;
            }
        });
        if (done is not null)
        {
            return done;
        }
        if (duplicate)
        {
            // Another request with the same key won the race (here or on another replica): answer as it does.
            db.ChangeTracker.Clear();
            var winner = await FindKeyAsync(userId, key, ct) ?? throw new InvalidOperationException("The Idempotency-Key conflict has no winner.");
            return await ReplayAsync(winner, request.ConversationId, staged!.Hash, ct);
        }
        if (admission!.Refusal is { } refusal)
        {
            db.ChangeTracker.Clear();
            return new Turn(Refused(refusal));
        }
        db.ChangeTracker.AcceptAllChanges();
        return Start(request, staged!, admission) with { StreamSlot = admission.StreamSlot };
    }

    /// <summary>
    /// The common turn (no Idempotency-Key, no files named; <see cref="Staged.Rows"/> set): the limits' admission
    /// first, then the conversation's update and the messages' insert as one command. On PostgreSQL that
    /// command is its own transaction (the statements of one batch commit or fail together), so the turn sends
    /// no <c>BEGIN</c> and no <c>COMMIT</c>, and the rows it touches (the account's storage counter among them)
    /// stay locked for that one statement instead of across the admission's round trip to the limit store. On
    /// SQLite a transaction holds the command's two statements together. A refusal writes nothing; a failed
    /// write gives back what the admission took (the request stays counted in its windows, as every answer is).
    /// </summary>
    private async Task<CallAdmission> CommonTurnAsync(TurnRequest request, Staged staged, CancellationToken ct)
    {
        var admission = await guard.AdmitTurnAsync(request.UserId, request.ApiKeyId, request.LockoutClient, request.Streaming, staged.ReservedCost);
        _counted = true;
        if (admission.Refusal is not null)
        {
            return admission;
        }
        try
        {
            await using var transaction = db.Provider == DatabaseProvider.Sqlite ? await db.Database.BeginTransactionAsync(ct) : null;
            // A JSON answer is sent only after the answer's final write, a synchronous commit that flushes this
            // one's WAL with it: nothing answered depends on this commit reaching the disk by itself (one WAL
            // flush per message instead of two). A stream shows the turn's ids first, so its turn stays flushed.
            await BatchCommands.UpdateRowThenInsertAsync<Conversation, Message>(db, request.ConversationId, staged.ConversationValues!, staged.Rows!, ct,
                unflushed: transaction is null && !request.Streaming);
            if (transaction is not null)
            {
                await transaction.CommitAsync(ct);
            }
        }
        catch
        {
            await guard.ReleaseAsync(admission);
            throw;
        }
        return admission;
    }

    /// <summary>What a turn writes and then runs, once its reads and checks have passed.</summary>
    /// <remarks>
    /// <see cref="Rows"/>: the common turn writes only its messages and the conversation's time and title (no
    /// Idempotency-Key, no files), as one command of two statements instead of <c>SaveChanges</c>
    /// (<see cref="CommonTurnAsync"/>); null when the staged entities are saved by <c>SaveChanges</c>.
    /// <see cref="Hash"/>: the request's hash, empty without an Idempotency-Key.
    /// <see cref="ReservedCost"/>: what the admission reserves from the month's budget (the most the answer can
    /// cost on a paid model); 0 when the pipeline reserves it, as for a free model's paid fallbacks.
    /// </remarks>
    private sealed record Staged(
        string Hash, bool Regenerate, Message UserMessage, Message Assistant, ModelInfo Model, List<Microsoft.Extensions.AI.ChatMessage> History,
        Retrieval? Retrieval, decimal ReservedCost, Message[]? Rows = null, (string Property, object? Value)[]? ConversationValues = null);

    /// <summary>The turn's reads and checks (inside its transaction unless the turn is common): a refusal or replay, or the rows staged.</summary>
    private async Task<(Turn? Turn, Staged? Staged)> StageAsync(TurnRequest request, CancellationToken ct)
    {
        var (userId, id, body, key) = (request.UserId, request.ConversationId, request.Message, request.IdempotencyKey);
        // The conversation, the account's stored characters and the attached files in one query. On PostgreSQL,
        // when no Idempotency-Key can make the turn a replay, the branch (the message count and the newest messages,
        // with the newest messages' text) comes in the same round trip.
        TurnStart? found;
        Branch? branch = null;
        if (db.Provider == DatabaseProvider.PostgreSql && key.Length == 0)
        {
            (found, branch) = await TurnReads.StartAsync(db, metrics, limits.Value, id, userId, ct);
        }
        else
        {
            found = await FindConversation(db, id, userId, ct);
        }
        if (found is null)
        {
            return (new Turn(new TurnRefusal(Problems.NotFound("conversation"))), null);
        }
        var conversation = found.Conversation;
        // The request's hash matters only to an Idempotency-Key (its replay compares it): a turn without one skips it.
        var hash = key.Length > 0 ? RequestHash(body) : "";
        if (key.Length > 0)
        {
            if (await FindKeyAsync(userId, key, ct) is { } known)
            {
                return (await ReplayAsync(known, id, hash, ct), null);
            }
            metrics.Cache("idempotency", hit: false);
        }
        if (runner.IsShuttingDown)
        {
            return (new Turn(new TurnRefusal(Problems.Result(StatusCodes.Status503ServiceUnavailable, "draining", "This server is restarting",
                "Send the request again (with the same Idempotency-Key); another server will take it."), RetryAfterSeconds: 1)), null);
        }

        // The branch structure without message text: the text is read only for the context window.
        branch ??= await ContextWindow.LoadBranchAsync(db, id, ct);
        var nodes = branch.Nodes;
        Guid? parentId;
        if (body.ParentMessageId.IsSet)
        {
            parentId = body.ParentMessageId.Value;
            if (parentId is { } older && !nodes.ContainsKey(older) && !branch.Complete)
            {
                // A parent older than the newest messages read: it and its window (a user message answered again is not in its own).
                await TurnReads.WalkAsync(db, metrics, limits.Value, id, branch, older, regenerating: string.IsNullOrEmpty(body.Content), 0, 0, ct);
            }
            if (parentId is { } p && !nodes.ContainsKey(p))
            {
                return (new Turn(new TurnRefusal(null, Problems.Invalid("parentMessageId", "is not a message of this conversation"))), null);
            }
        }
        else
        {
            parentId = branch.Newest;
        }
        // Regenerate: a parent that is a user message and no content → a new answer to that message.
        var regenerate = parentId is { } pid && nodes[pid].Role == MessageRoles.User && string.IsNullOrEmpty(body.Content);
        if (!regenerate && string.IsNullOrWhiteSpace(body.Content))
        {
            return (new Turn(new TurnRefusal(null, Problems.Invalid("content", "is required and must not be blank"))), null);
        }
        if (ConversationQuota.Check(limits.Value, metrics, branch.Count, found.Stored ?? 0, regenerate ? 1 : 2, regenerate ? 0 : body.Content!.Length) is { } full)
        {
            return (new Turn(new TurnRefusal(full)), null);
        }
        var model = (body.Model is null ? null : catalog.Find(body.Model)) ?? catalog.Find(conversation.Model) ?? catalog.Default;
        // The common turn (no Idempotency-Key, no files) on PostgreSQL meets the budget in its admission, which
        // also reserves what the pipeline's budget step would: nothing between here and there can refuse it.
        // Any other turn is checked here, as it always was, and the pipeline reserves its answer's cost: one
        // with files before they are searched, one with an Idempotency-Key before a duplicate replays, and on
        // SQLite, whose one write lock the turn holds at its admission, before a month the limit store lacks
        // is read from the ledger (whose queued lines are written first).
        var common = key.Length == 0 && body.FileIds is not { Count: > 0 };
        var budgetAtAdmission = common && found.Files.Count == 0 && db.Provider == DatabaseProvider.PostgreSql;
        if (!budgetAtAdmission && await guard.CheckBudgetAsync(userId, model) is { } overBudget)
        {
            return (new Turn(Refused(overBudget)), null);
        }
        // Files named on the message join the conversation's (saved with the messages below).
        var attached = found.Files;
        if (body.FileIds is { Count: > 0 } fileIds)
        {
            (var staged, var problem) = await Attachments.StageAsync(db, userId, id, fileIds, replace: false, files.Value.MaxFilesPerConversation, time.UtcNowForStorage(), ct);
            if (problem is not null)
            {
                return (new Turn(new TurnRefusal(problem)), null);
            }
            attached = staged!;
        }

        var now = time.UtcNowForStorage();
        var userMessage = regenerate
            ? await db.Messages.AsNoTracking().FirstAsync(m => m.Id == parentId, ct)
            : new Message
            {
                Id = time.NewId(), ConversationId = id, UserId = userId, ParentMessageId = parentId, Role = MessageRoles.User,
                Content = body.Content!, Status = MessageStatuses.Complete, CreatedAt = now, UpdatedAt = now, CompletedAt = now,
            };
        Retrieval? retrieval;
        try
        {
            retrieval = await documents.RetrieveAsync(db, userId, attached, userMessage.Content, ct);
        }
        catch (ProviderException)
        {
            return (new Turn(new TurnRefusal(Problems.Result(StatusCodes.Status503ServiceUnavailable, "embedding_unavailable",
                "The embedding model is unavailable", "This conversation's files cannot be searched right now; try again shortly."), RetryAfterSeconds: 5)), null);
        }
        var history = await ContextWindow.BuildAsync(db, metrics, limits.Value, conversation.SystemPrompt, branch, userMessage, ct);

        var assistantAt = time.UtcNowForStorage();
        var assistant = new Message
        {
            Id = time.NewId(), ConversationId = id, UserId = userId, ParentMessageId = userMessage.Id, Role = MessageRoles.Assistant,
            Content = "", Status = MessageStatuses.Streaming, Model = model.Id, CreatedAt = assistantAt, UpdatedAt = assistantAt,
            OwnerInstance = runner.InstanceId, LeaseExpiresAt = assistantAt.AddSeconds(settings.Value.LeaseSeconds),
            Sources = MessageDto.WriteSources(retrieval?.Sources),
        };
        var titled = string.IsNullOrWhiteSpace(conversation.Title);
        if (retrieval is not null)
        {
            // The excerpts come right before the message they were chosen for.
            history.Insert(history.Count - 1, retrieval.Context);
        }
        // A paid model's most (as the pipeline's budget step computes it) is reserved with the turn's other limits.
        var reserved = budgetAtAdmission && (model.InputPricePerMillionTokens > 0 || model.OutputPricePerMillionTokens > 0)
            ? clients.MaxCost(model, history, new Microsoft.Extensions.AI.ChatOptions { MaxOutputTokens = guard.Options.MaxOutputTokens })
            : 0m;
        if (!common)
        {
            // Read untracked: attached here, so SaveChanges writes the changes made from now on.
            db.Conversations.Attach(conversation);
        }
        conversation.UpdatedAt = assistantAt;
        if (titled)
        {
            conversation.Title = TitleFrom(userMessage.Content);
        }
        if (common)
        {
            // The common turn: nothing else is staged, so its rows go out as one command, untracked.
            Message[] rows = regenerate ? [assistant] : [userMessage, assistant];
            (string, object?)[] values = titled
                ? [(nameof(Conversation.Title), conversation.Title), (nameof(Conversation.UpdatedAt), assistantAt)]
                : [(nameof(Conversation.UpdatedAt), assistantAt)];
            return (null, new Staged(hash, regenerate, userMessage, assistant, model, history, retrieval, reserved, rows, values));
        }
        if (!regenerate)
        {
            db.Messages.Add(userMessage);
        }
        db.Messages.Add(assistant);
        if (key.Length > 0)
        {
            db.IdempotencyRecords.Add(new IdempotencyRecord
            {
                UserId = userId, Key = key, RequestHash = hash, ConversationId = id, Route = SendMessageRoute,
                UserMessageId = userMessage.Id, AssistantMessageId = assistant.Id, CreatedAt = now,
            });
        }
        return (null, new Staged(hash, regenerate, userMessage, assistant, model, history, retrieval, reserved));
    }

    /// <summary>Starts the generation of a committed turn; it holds the admission's generation slot and reservation.</summary>
    private Turn Start(TurnRequest request, Staged staged, CallAdmission admission)
    {
        var (regenerate, userMessage, assistant, retrieval, history) = (staged.Regenerate, staged.UserMessage, staged.Assistant, staged.Retrieval, staged.History);
        if (!regenerate)
        {
            metrics.MessageCreated(MessageRoles.User);
        }
        metrics.MessageCreated(MessageRoles.Assistant);

        var cache = request.Cache;
        if (regenerate && cache == CacheDirective.Default)
        {
            // A new answer to the same question is asked for because the last one was not wanted: never replay it.
            cache = CacheDirective.NoCache;
        }
        var generation = runner.Start(new GenerationRequest(
            assistant.Id, request.ConversationId, request.UserId, userMessage.Id, assistant.CreatedAt, staged.Model, history, request.AcceptedTimestamp,
            guard.Options.MaxOutputTokens, request.ApiKeyId, admission.Slot, cache, retrieval?.Sources,
            staged.ReservedCost > 0 ? admission.Reservation : null));
        return new Turn(null, MessageDto.From(userMessage), assistant.Id, generation.Outcome, generation.CacheDecision);
    }

    /// <summary>
    /// Compiled once: a message's reads run on every turn, and a LINQ query rebuilt per call costs more
    /// CPU than the database does to answer it (the expression tree, its cache key, and the evaluation
    /// of the subqueries' <c>DbSet</c>s, which EF Core compiles afresh each time).
    /// </summary>
    private static readonly Func<AppDbContext, Guid, Guid, CancellationToken, Task<TurnStart?>> FindConversation =
        EF.CompileAsyncQuery((AppDbContext db, Guid id, Guid userId, CancellationToken ct) => db.Conversations.AsNoTracking()
            .Where(c => c.Id == id && c.UserId == userId)
            .Select(c => new TurnStart(
                c,
                db.UserStorage.Where(s => s.UserId == userId).Select(s => (long?)s.StoredChars).FirstOrDefault(),
                db.Set<ConversationFile>().Where(a => a.ConversationId == c.Id).OrderBy(a => a.CreatedAt).Select(a => a.FileId).ToList()))
            .FirstOrDefault());

    private Task<IdempotencyRecord?> FindKeyAsync(Guid userId, string key, CancellationToken ct) =>
        db.IdempotencyRecords.AsNoTracking().FirstOrDefaultAsync(r => r.UserId == userId && r.Key == key, ct);

    /// <summary>The same Idempotency-Key again: the first request's turn, or 422 when the key was used for something else.</summary>
    private async Task<Turn> ReplayAsync(IdempotencyRecord record, Guid conversationId, string hash, CancellationToken ct)
    {
        // A key is bound to its route and conversation: the same body elsewhere is a different request.
        if (record.ConversationId != conversationId || (record.Route ?? SendMessageRoute) != SendMessageRoute)
        {
            return new Turn(new TurnRefusal(Problems.Result(StatusCodes.Status422UnprocessableEntity, "idempotency_key_reused",
                "Idempotency-Key reused for another request",
                "This Idempotency-Key was already used for a message in another conversation or on another route; use a new key for a new message.")));
        }
        if (record.RequestHash != hash)
        {
            return new Turn(new TurnRefusal(Problems.Result(StatusCodes.Status422UnprocessableEntity, "idempotency_key_reused",
                "Idempotency-Key reused with a different request", "This Idempotency-Key was already used for a different message; use a new key for a new message.")));
        }
        metrics.Cache("idempotency", hit: true);
        var userMessage = await db.Messages.AsNoTracking().FirstAsync(m => m.Id == record.UserMessageId, ct);
        return new Turn(null, MessageDto.From(userMessage), record.AssistantMessageId, runner.Find(record.AssistantMessageId));
    }

    private static TurnRefusal Refused(LimitRefusal refusal)
    {
        var problem = Problems.Create(429, refusal.Limit == "budget" ? "budget_exceeded" : "rate_limited", refusal.Title, refusal.Detail);
        problem.Extensions["limit"] = refusal.Limit;
        return new TurnRefusal(TypedResults.Problem(problem), RetryAfterSeconds: refusal.RetryAfterSeconds);
    }

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
}
