using System.Globalization;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Jackcwf.Api.Data;
using Jackcwf.Api.Feedback;
using Jackcwf.Api.Web;
using Microsoft.EntityFrameworkCore;

namespace Jackcwf.Api.Conversations;

/// <summary>
/// Writes a whole conversation (the unpaged view and the exports) straight to the response, a
/// batch of messages at a time: memory stays at one batch however long the conversation is, and no
/// database reader stays open while a slow client reads.
/// </summary>
public static class ConversationStreams
{
    public const string ExportFormat = "jackcwf.conversation.v1";

    /// <summary>Messages read per database round trip.</summary>
    public const int BatchSize = 32;

    /// <summary>Every message of a conversation, oldest first, read in keyset batches.</summary>
    public static async IAsyncEnumerable<IReadOnlyList<Message>> ReadBatchesAsync(
        AppDbContext db, Guid conversationId, [EnumeratorCancellation] CancellationToken ct)
    {
        DateTime? after = null;
        // Rows already sent that carry the boundary time (two replicas can write the same microsecond).
        var sentAtBoundary = new HashSet<Guid>();
        while (true)
        {
            var query = db.Messages.AsNoTracking().Where(m => m.ConversationId == conversationId);
            if (after is { } a)
            {
                query = query.Where(m => m.CreatedAt >= a);
            }
            var take = BatchSize + sentAtBoundary.Count;
            var rows = await query.OrderBy(m => m.CreatedAt).ThenBy(m => m.Id).Take(take).ToListAsync(ct);
            var fresh = rows.Where(r => r.CreatedAt != after || !sentAtBoundary.Contains(r.Id)).ToList();
            if (fresh.Count > 0)
            {
                yield return fresh;
                var last = fresh[^1].CreatedAt;
                if (last != after)
                {
                    sentAtBoundary.Clear();
                    after = last;
                }
                foreach (var r in fresh.Where(r => r.CreatedAt == last))
                {
                    sentAtBoundary.Add(r.Id);
                }
            }
            if (rows.Count < take || fresh.Count == 0)
            {
                yield break;
            }
        }
    }

    /// <summary>
    /// The conversation as JSON: the view's shape (<see cref="ConversationDetail"/> plus a null
    /// <c>nextCursor</c>) or, for an export, <see cref="ExportDocument"/>'s.
    /// </summary>
    public static async Task WriteJsonAsync(Stream body, AppDbContext db, Conversation c, bool export, CancellationToken ct)
    {
        // Over a pipe, the serializer's own flushes only hand bytes to the pipe; the network writes are the awaited FlushAsync calls.
        var pipe = PipeWriter.Create(body, new StreamPipeWriterOptions(leaveOpen: true));
        await using var json = new Utf8JsonWriter(pipe, new JsonWriterOptions { Encoder = AppJsonContext.Default.Options.Encoder });
        json.WriteStartObject();
        if (export)
        {
            json.WritePropertyName("conversation");
            json.WriteStartObject();
        }
        json.WriteString("id", c.Id);
        json.WriteString("title", c.Title);
        json.WriteString("model", c.Model);
        json.WriteString("systemPrompt", c.SystemPrompt);
        json.WriteString("createdAt", c.CreatedAt);
        json.WriteString("updatedAt", c.UpdatedAt);
        json.WriteStartArray("fileIds");
        foreach (var fileId in await Files.Attachments.ListAsync(db, c.Id, ct))
        {
            json.WriteStringValue(fileId);
        }
        json.WriteEndArray();
        json.WriteBoolean("pinned", c.Pinned);
        json.WriteBoolean("archived", c.Archived);
        if (c.FolderId is { } folder)
        {
            json.WriteString("folderId", folder);
        }
        else
        {
            json.WriteNull("folderId");
        }
        json.WriteStartArray("messages");
        await foreach (var batch in ReadBatchesAsync(db, c.Id, ct))
        {
            var feedback = await FeedbackApi.ForMessagesAsync(db, batch, ct);
            foreach (var m in batch)
            {
                JsonSerializer.Serialize(json, MessageDto.From(m, feedback.GetValueOrDefault(m.Id)), AppJsonContext.Default.MessageDto);
            }
            json.Flush();
            await pipe.FlushAsync(ct);
        }
        json.WriteEndArray();
        if (export)
        {
            json.WriteEndObject();
            json.WriteString("exportedAt", DateTime.UtcNow);
            json.WriteString("format", ExportFormat);
        }
        else
        {
            json.WriteNull("nextCursor");
        }
        json.WriteEndObject();
        json.Flush();
        await pipe.CompleteAsync();
    }

    public static async Task WriteMarkdownAsync(Stream body, AppDbContext db, Conversation c, CancellationToken ct)
    {
        await using var md = new StreamWriter(body, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false), bufferSize: 16 * 1024, leaveOpen: true);
        await md.WriteAsync($"# {(string.IsNullOrWhiteSpace(c.Title) ? "Conversation" : c.Title)}\n\n");
        await md.WriteAsync($"- Model: `{c.Model}`\n");
        await md.WriteAsync($"- Created: {c.CreatedAt.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture)}\n");
        if (c.SystemPrompt is { } sp)
        {
            await md.WriteAsync($"\n## System prompt\n\n{sp}\n");
        }
        await foreach (var batch in ReadBatchesAsync(db, c.Id, ct))
        {
            foreach (var m in batch)
            {
                await md.WriteAsync("\n## ");
                await md.WriteAsync(m.Role == MessageRoles.User ? "User" : "Assistant");
                if (m.Model is { } model && m.Role == MessageRoles.Assistant)
                {
                    await md.WriteAsync($" ({model})");
                }
                if (m.Status != MessageStatuses.Complete)
                {
                    await md.WriteAsync($" — {m.Status}");
                }
                await md.WriteAsync("\n\n");
                await md.WriteAsync(m.Content);
                await md.WriteAsync('\n');
            }
            await md.FlushAsync(ct);
        }
        await md.FlushAsync(ct);
    }
}
