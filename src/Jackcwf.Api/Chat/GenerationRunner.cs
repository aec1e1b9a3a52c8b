using System.Collections.Concurrent;
using System.Diagnostics;
using Jackcwf.Api.Ai;
using Jackcwf.Api.Ai.Pipeline;
using Jackcwf.Api.Conversations;
using Jackcwf.Api.Data;
using Jackcwf.Api.Telemetry;
using Jackcwf.ServiceDefaults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Chat;

public sealed record GenerationRequest(
    Guid MessageId,
    Guid ConversationId,
    Guid UserId,
    Guid? ParentMessageId,
    DateTime CreatedAt,
    ModelInfo Model,
    IReadOnlyList<ChatMessage> History,
    long AcceptedTimestamp,
    int? MaxOutputTokens,
    Guid? ApiKeyId = null,
    Limits.GenerationSlot? Slot = null,
    CacheDirective Cache = CacheDirective.Default,
    IReadOnlyList<Files.SourceDto>? Sources = null,
    Limits.SpendReservation? Reservation = null);

/// <summary>A generation started by <see cref="GenerationRunner.Start"/>.</summary>
public sealed record StartedGeneration(Task<GenerationOutcome> Outcome, Task<string> CacheDecision);

/// <summary>The stored outcome of a generation.</summary>
/// <param name="Stored">
/// The final write found the answer's row. It does not when the conversation was deleted meanwhile, or when the
/// turn's own write, committed without a WAL flush of its own (a JSON turn, <see cref="ChatTurns"/>), was lost by
/// a crash or failover of PostgreSQL before this write: a JSON answer is then not reported as a success.
/// </param>
public sealed record GenerationOutcome(MessageDto Message, ProviderFailure? Failure, string CacheStatus = CacheStatuses.Bypass, bool Stored = true);

/// <summary>
/// Runs generations detached from the HTTP request that started them: streams from the model into
/// the event log, checkpoints the text of every running generation from one shared timer (never per
/// token, never a timer per generation), renews the leases, and stores
/// the final status. Stops (user), interruptions (shutdown) and failures all keep the text. The model
/// pipeline does the accounting, limits, telemetry, caching and resilience; this writes the output.
/// </summary>
public sealed class GenerationRunner(
    ChatClientProvider clients,
    IGenerationEventLog log,
    IServiceScopeFactory scopes,
    JackcwfMetrics metrics,
    IOptions<ChatSettings> settings,
    TimeProvider time,
    ILogger<GenerationRunner> logger) : IHostedService, IShutdownParticipant
{
    private readonly ConcurrentDictionary<Guid, Running> _running = new();
    private readonly FinalWrites _finalWrites = new(scopes, time, logger);
    private volatile bool _shuttingDown;

    /// <summary>Identifies this replica as the owner of the generations it runs.</summary>
    public string InstanceId { get; } = $"{Environment.MachineName}:{Environment.ProcessId}:{Guid.NewGuid().ToString("N")[..8]}";

    public bool IsShuttingDown => _shuttingDown;

    public int Count => _running.Count;

    public IEnumerable<long> StartTimestamps => _running.Values.Select(r => r.Started);

    /// <summary>
    /// Starts a generation. <see cref="StartedGeneration.CacheDecision"/> completes with the response
    /// cache's decision (<c>HIT</c>, <c>MISS</c>, <c>BYPASS</c>) before the provider is called.
    /// </summary>
    public StartedGeneration Start(GenerationRequest request)
    {
        var running = new Running(request);
        _running[request.MessageId] = running;
        // Registered in the log before returning, so the caller's stream reads the log from its first event
        // instead of falling back to following database checkpoints.
        var begun = log.BeginAsync(request.MessageId, running.Text);
        running.Task = Task.Run(async () =>
        {
            try
            {
                await begun;
                return await RunAsync(running);
            }
            finally
            {
                // A call refused before the cache (the budget) or a crash: the stream must not wait for a decision.
                running.CacheDecided(CacheStatuses.Bypass);
            }
        });
        return new(running.Task, running.CacheDecision);
    }


    /// <summary>The local generation of a message, if this replica runs it.</summary>
    public Task<GenerationOutcome>? Find(Guid messageId) => _running.TryGetValue(messageId, out var r) ? r.Task : null;

    /// <summary>Stops every generation of a user running here (the account was disabled).</summary>
    public void StopAllForUser(Guid userId)
    {
        foreach (var r in _running.Values.Where(r => r.Request.UserId == userId))
        {
            r.Cancel(MessageStatuses.Stopped);
        }
    }

    public bool TryStop(Guid messageId)
    {
        if (!_running.TryGetValue(messageId, out var r))
        {
            return false;
        }
        r.Cancel(MessageStatuses.Stopped);
        return true;
    }

    private async Task<GenerationOutcome> RunAsync(Running run)
    {
        var req = run.Request;
        var text = run.Text;
        ProviderFailure? failure = null;
        string status;
        var call = new ChatCall
        {
            UserId = req.UserId, ApiKeyId = req.ApiKeyId, Source = Usage.UsageLedger.Chat, RequestedModel = req.Model,
            Cache = req.Cache, AcceptedTimestamp = req.AcceptedTimestamp, StopReason = () => run.Reason, CacheDecided = run.CacheDecided,
            Slot = req.Slot, Reservation = req.Reservation, DefersSettlement = true,
        };
        try
        {
            var options = call.Attach(new ChatOptions { MaxOutputTokens = req.MaxOutputTokens ?? req.Model.MaxOutputTokens });
            await foreach (var update in clients.Get(req.Model).GetStreamingResponseAsync(req.History, options, run.Token))
            {
                var delta = update.Text;
                if (string.IsNullOrEmpty(delta))
                {
                    continue;
                }
                var end = text.Append(delta);
                await log.AppendDeltaAsync(req.MessageId, delta, end);
            }
            status = MessageStatuses.Complete;
        }
        catch (OperationCanceledException) when (run.Token.IsCancellationRequested)
        {
            status = run.Reason ?? MessageStatuses.Stopped;
        }
        catch (Limits.LimitRefusedException e)
        {
            failure = new ProviderFailure("budget_exceeded", 429, e.Refusal.Title, e.Refusal.Detail);
            status = MessageStatuses.Failed;
        }
        catch (Exception ex)
        {
            failure = ProviderFailure.Classify(ex, call.AnsweringModel.Provider);
            if (text.Length > 0)
            {
                failure = failure.MidStream();
            }
            status = MessageStatuses.Failed;
            logger.LogWarning("Generation {MessageId} with {Model} failed: {Kind} ({ExceptionType})", req.MessageId, call.AnsweringModel.Id, failure.Kind, ex.GetType().Name);
        }

        var final = text.ToString();
        var completedAt = time.UtcNowForStorage();
        var answered = call.AnsweringModel;
        var dto = new MessageDto(req.MessageId, req.ConversationId, req.ParentMessageId, MessageRoles.Assistant, final, status, answered.Id,
            new UsageDto((int)call.InputTokens, (int)call.OutputTokens), call.CostUsd, failure?.Kind ?? (status == MessageStatuses.Interrupted ? "interrupted" : null),
            req.CreatedAt, completedAt, answered.Id == req.Model.Id ? null : req.Model.Id, call.Cached ? true : null, Sources: req.Sources);

        bool stored;
        try
        {
            stored = await StoreFinalAsync(req.UserId, dto, failure);
            // Once the answer is stored: the settlement (its real cost and the generation slot's release, which the
            // budget step left to this point) and the final event go to Redis together, the settlement first; this
            // replica's readers see the end once the settlement is answered.
            await log.CompleteAsync(req.MessageId, new GenerationFinal(dto, failure is null ? null : new FinalFailure(failure.Kind, failure.HttpStatus, failure.Title, failure.Detail)),
                () => SettleAsync(call, req.Slot));
        }
        finally
        {
            // Whatever failed above, nothing stays held (a no-op once the settlement went out).
            await SettleAsync(call, req.Slot);
        }
        _running.TryRemove(req.MessageId, out _);
        run.Dispose();
        return new GenerationOutcome(dto, failure, call.CacheStatus, stored);
    }

    /// <summary>
    /// The settlement the budget step left (the answer's real cost and its generation slot's release, one store
    /// call), then the slot's release by itself, which does nothing once the settlement freed it: the slot of an
    /// answer the pipeline never settled (refused before its budget step, or never reached) is freed here. Queues
    /// its store call before it returns (nothing is awaited before it) and never throws.
    /// </summary>
    private async ValueTask SettleAsync(ChatCall call, Limits.GenerationSlot? slot)
    {
        try
        {
            if (call.TakeDeferredSettlement() is { } settle)
            {
                await settle();
            }
            if (slot is not null)
            {
                await slot.DisposeAsync();
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The stores fall back by themselves when Redis fails; the slot's lease frees it anyway.
            logger.LogWarning("Settling the answer of {UserId} failed: {Error}", call.UserId, ex.GetType().Name);
        }
    }

    /// <summary>
    /// One loop for every generation running here: each tick writes the text of those that grew, and
    /// renews the lease of silent ones a third of the way into it, in one statement per
    /// <see cref="BatchCommands.MaxRows"/> generations. A thousand running answers cost one timer and
    /// two statements a second, not a thousand timers and two thousand statements.
    /// </summary>
    private async Task CheckpointLoopAsync(CancellationToken ct)
    {
        var s = settings.Value;
        var renewEvery = TimeSpan.FromSeconds(Math.Max(1, s.LeaseSeconds / 3));
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(s.CheckpointIntervalMs), time);
        try
        {
            while (await timer.WaitForNextTickAsync(ct))
            {
                // In the order of their accounts, as the grouped final writes (FinalWrites): each row's trigger locks its
                // account's storage counter, and statements of many rows that lock them in one order cannot deadlock.
                foreach (var batch in _running.Values.Where(r => r.CheckpointDue(renewEvery)).OrderBy(r => r.Request.UserId).Chunk(BatchCommands.MaxRows))
                {
                    await CheckpointAsync(batch, ct);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task CheckpointAsync(Running[] runs, CancellationToken ct)
    {
        var s = settings.Value;
        var texts = runs.Select(r => r.Snapshot()).ToArray();
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
            var now = time.UtcNowForStorage();
            // Only while streaming: a checkpoint that loses the race with the final write changes nothing.
            await BatchCommands.UpdateAsync<Message>(db, runs.Select((r, i) => ((object)r.Request.MessageId, (object?)texts[i])).ToArray(),
                nameof(Message.Content), [(nameof(Message.UpdatedAt), now), (nameof(Message.LeaseExpiresAt), now.AddSeconds(s.LeaseSeconds))],
                nameof(Message.Status), MessageStatuses.Streaming, ct);
            for (var i = 0; i < runs.Length; i++)
            {
                runs[i].Checkpointed(texts[i].Length);
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Missed checkpoints are retried on the next tick; the final write stores everything.
            logger.LogWarning("Checkpoint of {Count} running answer(s) failed: {Error}", runs.Length, ex.GetType().Name);
        }
    }

    private Task<bool> StoreFinalAsync(Guid userId, MessageDto dto, ProviderFailure? failure)
    {
        // Absolute values (one row's UPDATE, or a row of a group's, both prepared by PostgreSQL): retrying it is harmless.
        (string, object?)[] values =
        [
            (nameof(Message.Content), dto.Content),
            (nameof(Message.Status), dto.Status),
            (nameof(Message.InputTokens), dto.Usage!.InputTokens),
            (nameof(Message.OutputTokens), dto.Usage.OutputTokens),
            (nameof(Message.CostUsd), dto.CostUsd),
            (nameof(Message.Model), dto.Model),
            (nameof(Message.RequestedModel), dto.RequestedModel),
            (nameof(Message.ErrorCode), dto.Error),
            (nameof(Message.ErrorDetail), failure?.Detail),
            (nameof(Message.UpdatedAt), dto.CompletedAt!.Value),
            (nameof(Message.CompletedAt), dto.CompletedAt.Value),
            (nameof(Message.LeaseExpiresAt), null),
        ];
        // The final write must land even during shutdown or a database blip: retried for a while. It goes in one
        // statement and one commit with the other answers finishing meanwhile (group commit).
        return _finalWrites.StoreAsync(userId, dto.Id, values);
    }

    private readonly CancellationTokenSource _stopCheckpoints = new();
    private Task? _checkpoints;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        metrics.GenerationStartTimestamps = () => StartTimestamps;
        _checkpoints = Task.Run(() => CheckpointLoopAsync(_stopCheckpoints.Token), CancellationToken.None);
        return Task.CompletedTask;
    }

    /// <summary>
    /// Lets running generations finish until <paramref name="deadline"/>, then interrupts the rest
    /// (their text is stored with status <c>interrupted</c>).
    /// </summary>
    public async Task DrainAsync(DateTime deadline)
    {
        _shuttingDown = true;
        // A request that passed the shutting-down check just before it was set starts its generation a
        // moment later: look again after each wait, so a late one gets the same deadline, not an interruption.
        var announced = false;
        while (time.GetUtcNow().UtcDateTime < deadline)
        {
            var pending = _running.Values.Select(r => r.Task).OfType<Task>().ToArray();
            if (pending.Length == 0)
            {
                if (_running.IsEmpty)
                {
                    return;
                }
                await Task.Delay(TimeSpan.FromMilliseconds(10), time);
                continue;
            }
            if (!announced)
            {
                logger.LogInformation("Waiting for {Count} running generation(s) to finish", pending.Length);
                announced = true;
            }
            await Task.WhenAny(Task.WhenAll(pending), Task.Delay(deadline - time.GetUtcNow().UtcDateTime, time));
        }
        var left = _running.Values.ToArray();
        if (left.Length > 0)
        {
            logger.LogWarning("Interrupting {Count} generation(s) still running at the shutdown deadline", left.Length);
            foreach (var r in left)
            {
                r.Cancel(MessageStatuses.Interrupted);
            }
            await Task.WhenAny(Task.WhenAll(left.Select(r => r.Task).OfType<Task>()), Task.Delay(TimeSpan.FromSeconds(10), time));
        }
    }

    private Task? _drain;
    private DateTime? _drainDeadline;

    /// <summary>Called once the drain delay has passed: no new generations; running ones get until the deadline.</summary>
    public Task OnDrainedAsync(TimeSpan gracefulTimeout)
    {
        _shuttingDown = true;
        _drainDeadline ??= time.GetUtcNow().UtcDateTime + gracefulTimeout;
        _drain ??= DrainAsync(_drainDeadline.Value);
        return Task.CompletedTask;
    }

    /// <summary>Waits for the drain; a generation that started after it ended (a late request) gets the same deadline.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await (_drain is { IsCompleted: false } drain ? drain : DrainAsync(_drainDeadline ?? time.GetUtcNow().UtcDateTime));
        // Checkpoints ran through the drain (leases stay renewed); the generations are stored now.
        await _stopCheckpoints.CancelAsync();
        if (_checkpoints is not null)
        {
            await _checkpoints;
        }
    }

    private sealed class Running(GenerationRequest request) : IDisposable
    {
        private readonly CancellationTokenSource _cts = new();
        private readonly TaskCompletionSource<string> _cacheDecision = new(TaskCreationOptions.RunContinuationsAsynchronously);

        private int _checkpointedLength;
        private long _checkpointedAt = Stopwatch.GetTimestamp();

        public GenerationRequest Request { get; } = request;
        public long Started { get; } = Stopwatch.GetTimestamp();
        /// <summary>The answer's one copy of its text, shared with the event log.</summary>
        public AnswerText Text { get; } = new();

        public string Snapshot() => Text.ToString();

        /// <summary>The text grew since the last checkpoint, or the lease needs renewing.</summary>
        public bool CheckpointDue(TimeSpan renewEvery)
        {
            return Text.Length != Volatile.Read(ref _checkpointedLength) || Stopwatch.GetElapsedTime(Volatile.Read(ref _checkpointedAt)) >= renewEvery;
        }

        public void Checkpointed(int length)
        {
            Volatile.Write(ref _checkpointedLength, length);
            Volatile.Write(ref _checkpointedAt, Stopwatch.GetTimestamp());
        }
        public Task<GenerationOutcome>? Task { get; set; }
        public string? Reason { get; private set; }
        public CancellationToken Token => _cts.Token;
        public Task<string> CacheDecision => _cacheDecision.Task;

        public void CacheDecided(string status) => _cacheDecision.TrySetResult(status);

        public void Cancel(string reason)
        {
            Reason ??= reason;
            try
            {
                _cts.Cancel();
            }
            catch (ObjectDisposedException)
            {
            }
        }

        public void Dispose() => _cts.Dispose();
    }
}
