using Jackcwf.Api.Conversations;
using Jackcwf.Api.Data;
using Jackcwf.Api.Web;
using Microsoft.EntityFrameworkCore;

namespace Jackcwf.Api.Chat;

/// <summary>
/// The SSE answer: <c>user</c> and <c>start</c> (for a new message), then the deltas after
/// <c>offset</c> and the final <c>done</c>/<c>error</c>. Reads the event log when it knows the
/// message, otherwise follows the database checkpoints, so it works on any replica. A new answer's
/// stream says the response cache's decision in <c>X-Cache</c>, sent with the headers.
/// </summary>
internal sealed class StreamResult(
    MessageDto? userMessage, Guid assistantId, Guid conversationId, int offset,
    GenerationRunner runner, IGenerationEventLog log, AppDbContext db, ChatSettings settings, System.Security.Claims.ClaimsPrincipal caller,
    Task<string>? cacheDecision = null) : IResult
{
    public async Task ExecuteAsync(HttpContext http)
    {
        var ct = http.RequestAborted;
        var access = http.RequestServices.GetRequiredService<Accounts.UserAccessCache>();
        var sse = new SseWriter(http.Response, () => access.IsAllowedAsync(caller));
        try
        {
            if (cacheDecision is { } cache)
            {
                // Decided before the provider is called (after the budget reservation and one cache read).
                http.Response.Headers["X-Cache"] = await cache.WaitAsync(ct);
            }
            SseWriter.PrepareHeaders(http);
            if (userMessage is not null)
            {
                await sse.WriteJsonAsync("user", null, userMessage, AppJsonContext.Default.MessageDto, ct);
                await sse.WriteJsonAsync("start", null, new StartPayload(assistantId, conversationId), AppJsonContext.Default.StartPayload, ct);
            }
            else
            {
                await http.Response.BodyWriter.FlushAsync(ct);
            }
            var keepAlive = TimeSpan.FromMilliseconds(settings.KeepAliveIntervalMs);
            if (log.TryRead(assistantId, offset, keepAlive, ct, out var events))
            {
                await foreach (var ev in events)
                {
                    await sse.WriteEventAsync(ev, ct);
                }
                return;
            }
            await FollowDatabaseAsync(sse, keepAlive, ct);
        }
        catch (OperationCanceledException)
        {
            // The client went away (the generation carries on and can be resumed), or its access was revoked.
        }
    }

    private async Task FollowDatabaseAsync(SseWriter sse, TimeSpan keepAlive, CancellationToken ct)
    {
        var sent = offset;
        var lastWrite = DateTime.UtcNow;
        while (!ct.IsCancellationRequested)
        {
            var m = await db.Messages.AsNoTracking().FirstOrDefaultAsync(x => x.Id == assistantId, ct);
            if (m is null)
            {
                return;
            }
            if (m.Content.Length > sent)
            {
                await sse.WriteAsync(GenerationEvent.Delta, m.Content.Length.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    System.Text.Json.JsonSerializer.Serialize(new DeltaPayload(m.Content[sent..]), AppJsonContext.Default.DeltaPayload), ct);
                sent = m.Content.Length;
                lastWrite = DateTime.UtcNow;
            }
            if (m.Status != MessageStatuses.Streaming)
            {
                await sse.WriteEventAsync(StoredFinalEvent(m), ct);
                return;
            }
            if (runner.IsShuttingDown)
            {
                // End without a final event: the client resumes on another replica.
                return;
            }
            // The event log may have learnt about it meanwhile (a generation started here after a retry).
            if (log.TryRead(assistantId, sent, keepAlive, ct, out var events))
            {
                await foreach (var ev in events)
                {
                    await sse.WriteEventAsync(ev, ct);
                }
                return;
            }
            if (DateTime.UtcNow - lastWrite >= keepAlive)
            {
                await sse.KeepAliveAsync(ct);
                lastWrite = DateTime.UtcNow;
            }
            await StreamDeadlines.Shared.Delay(TimeSpan.FromMilliseconds(Math.Min(250, settings.CheckpointIntervalMs))).WaitAsync(ct);
        }
    }

    internal static GenerationEvent StoredFinalEvent(Message m)
    {
        var failure = m.Status == MessageStatuses.Failed
            ? new Ai.ProviderFailure(m.ErrorCode ?? "other", 502, "The model provider failed", m.ErrorDetail ?? "The model provider failed while answering.")
            : null;
        return GenerationRunner.FinalEvent(MessageDto.From(m), failure);
    }
}
