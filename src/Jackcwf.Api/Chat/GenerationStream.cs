using System.Runtime.CompilerServices;
using Jackcwf.Api.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Chat;

/// <summary>An answer as the database holds it: its checkpointed text and status.</summary>
public interface IStoredAnswers
{
    /// <summary>The message, or null when it does not exist (any more).</summary>
    Task<Message?> ReadAsync(Guid messageId, CancellationToken cancellationToken);
}

internal sealed class DatabaseStoredAnswers(IServiceScopeFactory scopes) : IStoredAnswers
{
    public async Task<Message?> ReadAsync(Guid messageId, CancellationToken ct)
    {
        // Its own short-lived context: a stream outlives the request's unit of work by minutes.
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        return await db.Messages.AsNoTracking().FirstOrDefaultAsync(m => m.Id == messageId, ct);
    }
}

/// <summary>
/// An answer's events from an offset to its end, on any replica: tails the event log when the log
/// knows the message, otherwise (or when the log lost text, or its writer fell silent on another
/// replica) follows the database checkpoints. Yields deltas, keep-alives and one final event; ends
/// without a final event when this process is stopping and the answer is not written here, so the
/// client resumes on another replica.
/// </summary>
public sealed class GenerationStream(
    IGenerationEventLog log, IStoredAnswers answers, StreamDeadlines deadlines, TimeProvider time, IOptions<ChatSettings> settings,
    IHostApplicationLifetime lifetime, ILogger<GenerationStream> logger)
{
    /// <summary>After this long without new text from another replica's log, ask the database whether its writer is alive.</summary>
    public static readonly TimeSpan SilenceCheck = TimeSpan.FromSeconds(2);

    private TimeSpan FollowInterval => TimeSpan.FromMilliseconds(Math.Min(250, settings.Value.CheckpointIntervalMs));

    public async IAsyncEnumerable<GenerationEvent> ReadAsync(Guid messageId, int fromOffset, [EnumeratorCancellation] CancellationToken ct)
    {
        var keepAlive = TimeSpan.FromMilliseconds(settings.Value.KeepAliveIntervalMs);
        var stopping = lifetime.ApplicationStopping;
        var sent = fromOffset;
        var lastWrite = time.GetTimestamp();
        var lastProgress = lastWrite;
        long? lastDatabaseCheck = null;
        var reader = log.Open(messageId, sent);
        try
        {
            while (true)
            {
                if (stopping.IsCancellationRequested && reader is not { WriterIsLocal: true })
                {
                    yield break;
                }
                var readDatabase = reader is null;
                if (reader is not null)
                {
                    var wait = keepAlive - time.GetElapsedTime(lastWrite);
                    if (!reader.WriterIsLocal && wait > SilenceCheck)
                    {
                        wait = SilenceCheck;
                    }
                    var batch = await reader.ReadAsync(wait > TimeSpan.Zero ? wait : TimeSpan.Zero, ct);
                    var gap = batch.Gap;
                    foreach (var ev in batch.Events)
                    {
                        if (ev.IsFinal)
                        {
                            yield return ev;
                            yield break;
                        }
                        // Cut to what the client lacks: text may have come from the database since the reader opened.
                        var end = int.Parse(ev.Id, System.Globalization.CultureInfo.InvariantCulture);
                        var start = end - ev.Data.Length;
                        if (end <= sent)
                        {
                            continue;
                        }
                        if (start > sent)
                        {
                            gap = true;
                            break;
                        }
                        var missing = start >= sent ? ev : ev with { Data = ev.Data[(sent - start)..] };
                        sent = end;
                        lastWrite = lastProgress = time.GetTimestamp();
                        yield return missing;
                    }
                    if (gap)
                    {
                        // Redis failed or lost text: the database has everything up to its last checkpoint.
                        reader.Dispose();
                        reader = null;
                        readDatabase = true;
                    }
                    else if (!reader.WriterIsLocal && time.GetElapsedTime(lastProgress) >= SilenceCheck
                        && (lastDatabaseCheck is not { } checkedAt || time.GetElapsedTime(checkedAt) >= SilenceCheck))
                    {
                        // The writer may have died with its replica: the database (settled by the lease sweeper) says.
                        readDatabase = true;
                    }
                }
                if (readDatabase)
                {
                    lastDatabaseCheck = time.GetTimestamp();
                    var stored = await ReadStoredAsync(messageId, ct);
                    if (stored is null)
                    {
                        yield break;
                    }
                    if (stored.Content.Length > sent)
                    {
                        yield return GenerationEvent.ForDelta(stored.Content[sent..], stored.Content.Length);
                        sent = stored.Content.Length;
                        lastWrite = lastProgress = time.GetTimestamp();
                    }
                    if (stored.Status != MessageStatuses.Streaming)
                    {
                        yield return GenerationEvent.ForFinal(GenerationFinal.FromStored(stored));
                        yield break;
                    }
                    if (reader is null)
                    {
                        // The log may know it now (a generation started here after a retry, or Redis is back).
                        reader = log.Open(messageId, sent);
                        if (reader is null || reader.WriterIsLocal is false)
                        {
                            await deadlines.Delay(FollowInterval).WaitAsync(ct);
                        }
                    }
                }
                if (time.GetElapsedTime(lastWrite) >= keepAlive)
                {
                    yield return new(GenerationEvent.KeepAlive, "", "");
                    lastWrite = time.GetTimestamp();
                }
            }
        }
        finally
        {
            reader?.Dispose();
        }
    }

    /// <summary>
    /// The answer once it is no longer streaming, following the database checkpoints for at most
    /// <paramref name="deadline"/>; null when it is still streaming then (or was deleted).
    /// </summary>
    public async Task<Message?> WaitForStoredAsync(Guid messageId, TimeSpan deadline, CancellationToken ct)
    {
        var started = time.GetTimestamp();
        while (true)
        {
            var stored = await ReadStoredAsync(messageId, ct);
            if (stored is null)
            {
                return null;
            }
            if (stored.Status != MessageStatuses.Streaming)
            {
                return stored;
            }
            var left = deadline - time.GetElapsedTime(started);
            if (left <= TimeSpan.Zero)
            {
                return null;
            }
            await deadlines.Delay(left < FollowInterval ? left : FollowInterval).WaitAsync(ct);
        }
    }

    private async Task<Message?> ReadStoredAsync(Guid messageId, CancellationToken ct)
    {
        try
        {
            return await answers.ReadAsync(messageId, ct);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // A database blip must not end the stream: report "still running" and look again later.
            logger.LogWarning("Reading message {MessageId} for a stream failed: {Error}", messageId, ex.GetType().Name);
            return new Message { Id = messageId, Status = MessageStatuses.Streaming, Content = "" };
        }
    }
}
