using System.Security.Claims;
using Jackcwf.Api.Conversations;
using Jackcwf.Api.Web;

namespace Jackcwf.Api.Chat;

/// <summary>
/// The SSE answer: <c>user</c> and <c>start</c> (for a new message), then the events of
/// <see cref="GenerationStream"/> after <c>offset</c> ending with <c>done</c>/<c>error</c>, so it
/// works on any replica. A new answer's stream says the response cache's decision in
/// <c>X-Cache</c>, sent with the headers.
/// </summary>
public sealed class StreamResult(
    MessageDto? userMessage, Guid assistantId, Guid conversationId, int offset, GenerationStream stream, ClaimsPrincipal caller,
    Task<string>? cacheDecision = null) : IResult
{
    public async Task ExecuteAsync(HttpContext http)
    {
        var ct = http.RequestAborted;
        var access = http.RequestServices.GetRequiredService<Accounts.UserAccessCache>();
        var sse = new SseWriter(http.Response, access.AllowedCheck(caller));
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
            await foreach (var ev in stream.ReadAsync(assistantId, offset, ct))
            {
                await sse.WriteEventAsync(ev, ct);
            }
        }
        catch (OperationCanceledException)
        {
            // The client went away (the generation carries on and can be resumed), or its access was revoked.
        }
    }
}
