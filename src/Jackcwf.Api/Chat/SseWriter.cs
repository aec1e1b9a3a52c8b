using System.Buffers;
using System.Text;
using System.Text.Json;
using Jackcwf.Api.Conversations;
using Jackcwf.Api.Data;
using Jackcwf.Api.ErrorHandling;
using Jackcwf.Api.Web;

namespace Jackcwf.Api.Chat;

/// <summary>
/// Writes the Server-Sent Events of the contract straight to the response pipe. Hand-written
/// rather than <c>TypedResults.ServerSentEvents</c> because the contract needs comment lines
/// (<c>: keep-alive</c>) and a mix of pre-serialised and raw events, with one flush per event.
/// </summary>
public sealed class SseWriter
{
    private static readonly byte[] KeepAliveBytes = ": keep-alive\n\n"u8.ToArray();
    private readonly HttpResponse _response;
    private readonly Func<ValueTask<bool>> _allowed;

    /// <param name="allowed">Checked before every event (a cache read): a disabled account or revoked key ends the stream at once.</param>
    public SseWriter(HttpResponse response, Func<ValueTask<bool>>? allowed = null)
    {
        _response = response;
        _allowed = allowed ?? (() => ValueTask.FromResult(true));
    }

    private async Task EnsureAllowedAsync(CancellationToken ct)
    {
        if (await _allowed())
        {
            return;
        }
        var problem = JsonSerializer.Serialize(Problems.Create(401, "account_disabled", "Access revoked", "This account was disabled or this key was revoked."), AppJsonContext.Default.ProblemDetails);
        await WriteUncheckedAsync(GenerationEvent.Error, null, problem, ct);
        throw new OperationCanceledException("access revoked");
    }

    public static void PrepareHeaders(HttpContext context)
    {
        var r = context.Response;
        r.StatusCode = StatusCodes.Status200OK;
        r.ContentType = "text/event-stream; charset=utf-8";
        r.Headers.CacheControl = "no-cache, no-transform";
        r.Headers["X-Accel-Buffering"] = "no";
        context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpResponseBodyFeature>()?.DisableBuffering();
    }

    public async Task KeepAliveAsync(CancellationToken ct)
    {
        await EnsureAllowedAsync(ct);
        await WriteRawAsync(KeepAliveBytes, ct);
    }

    public Task WriteJsonAsync<T>(string type, string? id, T payload, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> info, CancellationToken ct) =>
        WriteAsync(type, id, JsonSerializer.Serialize(payload, info), ct);

    public Task WriteEventAsync(GenerationEvent ev, CancellationToken ct)
    {
        switch (ev.Type)
        {
            case GenerationEvent.KeepAlive:
                return KeepAliveAsync(ct);
            case GenerationEvent.Delta:
                return WriteAsync(ev.Type, ev.Id, JsonSerializer.Serialize(new DeltaPayload(ev.Data), AppJsonContext.Default.DeltaPayload), ct);
            case GenerationEvent.Final:
                var (type, data) = FinalEvent(JsonSerializer.Deserialize(ev.Data, AppJsonContext.Default.GenerationFinal)!);
                return WriteAsync(type, ev.Id, data, ct);
            default:
                // done/error as an earlier version stored them: already in their SSE form.
                return WriteAsync(ev.Type, ev.Id, ev.Data, ct);
        }
    }

    /// <summary>The last event of a stream: <c>done</c> with the stored message, or <c>error</c> with a problem.</summary>
    public static (string Type, string Data) FinalEvent(GenerationFinal final)
    {
        var message = final.Message;
        if (message.Status is MessageStatuses.Complete or MessageStatuses.Stopped)
        {
            return (GenerationEvent.Done, JsonSerializer.Serialize(message, AppJsonContext.Default.MessageDto));
        }
        var problem = final.Failure is { } f
            ? Problems.Create(f.HttpStatus, f.Kind == "budget_exceeded" ? f.Kind : $"provider_{f.Kind}", f.Title, f.Detail)
            : Problems.Create(503, "interrupted", "The answer was interrupted",
                "The server handling this answer stopped before it finished. The text so far is kept; continue or regenerate.");
        problem.Extensions["messageId"] = message.Id;
        problem.Extensions["messageStatus"] = message.Status;
        problem.Extensions["content"] = message.Content;
        return (GenerationEvent.Error, JsonSerializer.Serialize(problem, AppJsonContext.Default.ProblemDetails));
    }

    public async Task WriteAsync(string type, string? id, string data, CancellationToken ct)
    {
        await EnsureAllowedAsync(ct);
        await WriteUncheckedAsync(type, id, data, ct);
    }

    private async Task WriteUncheckedAsync(string type, string? id, string data, CancellationToken ct)
    {
        var writer = _response.BodyWriter;
        Append(writer, "event: ");
        Append(writer, type);
        Append(writer, "\n");
        if (id is not null)
        {
            Append(writer, "id: ");
            Append(writer, id);
            Append(writer, "\n");
        }
        // JSON never contains raw newlines, so one data line suffices.
        Append(writer, "data: ");
        Append(writer, data);
        Append(writer, "\n\n");
        await writer.FlushAsync(ct);
    }

    private async Task WriteRawAsync(byte[] bytes, CancellationToken ct)
    {
        await _response.BodyWriter.WriteAsync(bytes, ct);
    }

    private static void Append(IBufferWriter<byte> writer, string s)
    {
        var span = writer.GetSpan(Encoding.UTF8.GetMaxByteCount(s.Length));
        writer.Advance(Encoding.UTF8.GetBytes(s, span));
    }
}
