using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;

namespace Jackcwf.Testing;

/// <summary>
/// One Server-Sent Events block as it came over the wire (the lines up to a blank line). A block of
/// comments only (<c>: keep-alive</c>) is reported too, with <see cref="IsCommentOnly"/> set.
/// </summary>
public sealed record SseEvent(string? Event, string? Id, string? Data, int? Retry, IReadOnlyList<string> Comments, string Raw)
{
    /// <summary>The event type a browser dispatches: <see cref="Event"/>, or <c>message</c> when absent.</summary>
    public string Type => Event ?? "message";

    public bool IsCommentOnly => Event is null && Id is null && Data is null && Retry is null;

    /// <summary><see cref="Data"/> parsed as JSON.</summary>
    public JsonElement Json
    {
        get
        {
            using var document = JsonDocument.Parse(Data ?? throw new InvalidOperationException($"The event has no data:\n{Raw}"));
            return document.RootElement.Clone();
        }
    }

    /// <summary><see cref="Data"/> deserialised (web defaults: camelCase, case-insensitive).</summary>
    public T Deserialize<T>(JsonSerializerOptions? options = null) =>
        JsonSerializer.Deserialize<T>(Data ?? "null", options ?? JsonSerializerOptions.Web)
        ?? throw new InvalidOperationException($"The event data is null:\n{Raw}");
}

/// <summary>Reads raw SSE streams so tests can assert the exact wire format.</summary>
public static class SseClient
{
    /// <summary>Sends <paramref name="request"/> with <c>Accept: text/event-stream</c> and returns as soon as the headers arrive.</summary>
    public static Task<HttpResponseMessage> SendForEventsAsync(this HttpClient client, HttpRequestMessage request, CancellationToken cancellationToken = default)
    {
        if (!request.Headers.Accept.Any(a => a.MediaType == "text/event-stream"))
        {
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        }

        return client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
    }

    /// <summary>The events of a response body, in order, as they arrive.</summary>
    public static async IAsyncEnumerable<SseEvent> ReadEventsAsync(this HttpResponseMessage response, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
        await foreach (var item in ReadEventsAsync(stream, cancellationToken))
        {
            yield return item;
        }
    }

    /// <summary>Reads until the server ends the stream.</summary>
    public static async Task<IReadOnlyList<SseEvent>> ReadAllEventsAsync(this HttpResponseMessage response, CancellationToken cancellationToken = default)
    {
        var events = new List<SseEvent>();
        await foreach (var item in response.ReadEventsAsync(cancellationToken))
        {
            events.Add(item);
        }

        return events;
    }

    /// <summary>Parses per the HTML spec's event stream rules; an unterminated last block is dropped, like a browser does.</summary>
    public static async IAsyncEnumerable<SseEvent> ReadEventsAsync(Stream stream, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using var reader = new StreamReader(stream, new UTF8Encoding(false), detectEncodingFromByteOrderMarks: false);
        var block = new Block();
        var first = true;
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            if (first)
            {
                // A BOM at the start of the stream is not part of the first field name.
                line = line.TrimStart('\uFEFF');
                first = false;
            }

            if (line.Length == 0)
            {
                if (block.HasContent)
                {
                    yield return block.ToEvent();
                }

                block = new Block();
                continue;
            }

            block.Add(line);
        }
    }

    private sealed class Block
    {
        private readonly List<string> _comments = [];
        private readonly StringBuilder _raw = new();
        private StringBuilder? _data;
        private string? _event;
        private string? _id;
        private int? _retry;

        public bool HasContent => _raw.Length > 0;

        public void Add(string line)
        {
            _raw.Append(line).Append('\n');
            if (line[0] == ':')
            {
                _comments.Add(line.StartsWith(": ", StringComparison.Ordinal) ? line[2..] : line[1..]);
                return;
            }

            var colon = line.IndexOf(':', StringComparison.Ordinal);
            var field = colon < 0 ? line : line[..colon];
            var value = colon < 0 ? "" : line[(colon + 1)..];
            if (value.StartsWith(' '))
            {
                value = value[1..];
            }

            switch (field)
            {
                case "event":
                    _event = value;
                    break;
                case "data":
                    if (_data is null)
                    {
                        _data = new StringBuilder(value);
                    }
                    else
                    {
                        _data.Append('\n').Append(value);
                    }

                    break;
                case "id" when !value.Contains('\0', StringComparison.Ordinal):
                    _id = value;
                    break;
                case "retry" when int.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var retry):
                    _retry = retry;
                    break;
            }
        }

        public SseEvent ToEvent() => new(_event, _id, _data?.ToString(), _retry, _comments, _raw.ToString());
    }
}
