using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace Jackcwf.Api.RobustnessTests.Infrastructure;

/// <summary>
/// Reads one answer's SSE stream in the background, so a test can act (signal, kill) while deltas
/// arrive, then inspect what the client received.
/// </summary>
internal sealed class StreamWatcher : IAsyncDisposable
{
    private readonly Lock _gate = new();
    private readonly List<SseEvent> _events = [];
    private readonly StringBuilder _text = new();
    private readonly HttpResponseMessage _response;
    private readonly CancellationTokenSource _cts = new();
    private Task _reader = Task.CompletedTask;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private StreamWatcher(HttpResponseMessage response) => _response = response;

    public Guid? AssistantId { get; private set; }

    /// <summary>Set when the stream ended (normally or with a broken connection).</summary>
    public Exception? ReadError { get; private set; }

    public static async Task<StreamWatcher> StartAsync(HttpClient client, Guid conversation, string content)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, $"api/conversations/{conversation}/messages") { Content = JsonContent.Create(new { content }) };
        var response = await client.SendForEventsAsync(request);
        if (!response.IsSuccessStatusCode)
        {
            // Read the body only on failure: reading it here would wait for the whole stream.
            Assert.Fail($"the stream answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }
        var watcher = new StreamWatcher(response);
        watcher._reader = Task.Run(watcher.ReadAsync);
        return watcher;
    }

    private async Task ReadAsync()
    {
        try
        {
            await foreach (var e in _response.ReadEventsAsync(_cts.Token))
            {
                lock (_gate)
                {
                    _events.Add(e);
                    if (e.Event == "start")
                    {
                        AssistantId = e.Json.GetProperty("messageId").GetGuid();
                    }
                    if (e.Event == "delta")
                    {
                        _text.Append(e.Json.GetProperty("text").GetString());
                    }
                }
                Signal();
            }
        }
        catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException)
        {
            ReadError = e;
        }
        Signal();
    }

    private void Signal()
    {
        TaskCompletionSource changed;
        lock (_gate)
        {
            changed = _changed;
            _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        changed.TrySetResult();
    }

    public IReadOnlyList<SseEvent> Events
    {
        get { lock (_gate) { return [.. _events]; } }
    }

    public int DeltaCount
    {
        get { lock (_gate) { return _events.Count(e => e.Event == "delta"); } }
    }

    /// <summary>The concatenated text of the deltas received so far.</summary>
    public string Text
    {
        get { lock (_gate) { return _text.ToString(); } }
    }

    public bool Ended => _reader.IsCompleted;

    public SseEvent? Final => Events.LastOrDefault(e => e.Event is "done" or "error");

    public async Task WaitForDeltasAsync(int count, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        while (DeltaCount < count)
        {
            Task changed;
            lock (_gate)
            {
                changed = _changed.Task;
            }
            if (Ended && DeltaCount < count)
            {
                Assert.Fail($"the stream ended after {DeltaCount} deltas (wanted {count}): {ReadError?.Message}");
            }
            try
            {
                await changed.WaitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                Assert.Fail($"only {DeltaCount} of {count} deltas arrived within {timeout}");
            }
        }
    }

    public async Task WaitForEndAsync(TimeSpan timeout)
    {
        try
        {
            await _reader.WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            Assert.Fail($"the stream did not end within {timeout}; {DeltaCount} deltas so far");
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _cts.CancelAsync();
        try
        {
            await _reader.WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (TimeoutException)
        {
            // The connection is dropped with the response below.
        }
        _response.Dispose();
        _cts.Dispose();
    }

    public static JsonElement AssistantOf(JsonElement conversation, Guid id) =>
        conversation.GetProperty("messages").EnumerateArray().Single(m => m.GetProperty("id").GetGuid() == id);
}
