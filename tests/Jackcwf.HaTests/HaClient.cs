using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Jackcwf.Testing;

namespace Jackcwf.HaTests;

/// <summary>How one chat ended, as the client saw it.</summary>
public sealed record ChatOutcome(
    string Key,
    Guid ConversationId,
    string Sent,
    Guid? AssistantId,
    string ReceivedText,
    string? FinalType,
    string? FinalContent,
    string? FinalStatus,
    int Attempts,
    int Resumes,
    TimeSpan? FirstDelta,
    TimeSpan Duration,
    string? Error)
{
    /// <summary>Acknowledged: the service stored the message (the client saw its assistant id).</summary>
    public bool Acknowledged => AssistantId is not null;

    public bool Completed => FinalType == "done" && Error is null;
}

/// <summary>
/// A signed-in user talking to the service the way the documented client contract says: send with an
/// <c>Idempotency-Key</c>; on 502/503 or a connection error send the same request again; when a
/// stream ends without its final event, resume with <c>Last-Event-ID</c> (on whichever replica the
/// balancer picks).
/// </summary>
public sealed class HaClient(HttpClient http, string token)
{
    private static readonly TimeSpan RetryDelay = TimeSpan.FromMilliseconds(250);

    public HttpClient Http { get; } = http;

    public string Token { get; } = token;

    /// <summary>Also retry 500 responses (only while the database itself is down).</summary>
    public bool RetryServerErrors { get; set; }

    /// <summary>How long one logical operation may keep retrying.</summary>
    public TimeSpan Deadline { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>HTTP attempts made so far (every request, retries included).</summary>
    public int Requests => _requests;

    private int _requests;

    private readonly System.Collections.Concurrent.ConcurrentQueue<(DateTime At, string What)> _failedAttempts = new();

    /// <summary>Every HTTP attempt answered with a 5xx or not answered at all, with when it started.</summary>
    public IReadOnlyCollection<(DateTime At, string What)> FailedAttempts => _failedAttempts;

    public static async Task<(HaClient Client, string Email, string Password)> RegisterAsync(HttpClient http, string? email = null)
    {
        email ??= $"ha-{Guid.NewGuid():N}@example.com";
        const string password = "Ha-passw0rd!";
        await RetryAsync(() => http.PostAsJsonAsync("api/auth/register", new { email, password }));
        var token = await LoginAsync(http, email, password);
        return (new HaClient(http, token), email, password);
    }

    public static async Task<string> LoginAsync(HttpClient http, string email, string password)
    {
        using var login = await RetryAsync(() => http.PostAsJsonAsync("api/auth/login", new { email, password }));
        using var json = JsonDocument.Parse(await login.Content.ReadAsStringAsync());
        return json.RootElement.GetProperty("accessToken").GetString()!;
    }

    private static async Task<HttpResponseMessage> RetryAsync(Func<Task<HttpResponseMessage>> send)
    {
        var stopwatch = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                var response = await send();
                if (response.IsSuccessStatusCode || stopwatch.Elapsed > TimeSpan.FromSeconds(30) || (int)response.StatusCode is not (502 or 503 or 504))
                {
                    response.EnsureSuccessStatusCode();
                    return response;
                }
                response.Dispose();
            }
            catch (HttpRequestException) when (stopwatch.Elapsed < TimeSpan.FromSeconds(30))
            {
            }
            await Task.Delay(RetryDelay);
        }
    }

    public async Task<Guid> CreateConversationAsync(string? model = null)
    {
        using var response = await SendAsync(() => Request(HttpMethod.Post, "api/conversations", new { title = "ha", model }), stream: false);
        response.EnsureSuccessStatusCode();
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return json.RootElement.GetProperty("id").GetGuid();
    }

    /// <summary>GET the conversation with its messages; returns the duration, or throws when it finally failed.</summary>
    public async Task<TimeSpan> ReadConversationAsync(Guid conversationId)
    {
        var stopwatch = Stopwatch.StartNew();
        using var response = await SendAsync(() => Request(HttpMethod.Get, $"api/conversations/{conversationId}"), stream: false);
        if (!response.IsSuccessStatusCode)
        {
            throw new HttpRequestException($"GET conversation answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }
        await response.Content.ReadAsStringAsync();
        return stopwatch.Elapsed;
    }

    /// <summary>
    /// Sends one message and follows its answer to the final event through every retry and resume.
    /// Checks on the way that each delta's id is the text length after it (the resume contract).
    /// </summary>
    public async Task<ChatOutcome> ChatAsync(Guid conversationId, string content, string? model = null, CancellationToken stop = default)
    {
        var key = Guid.NewGuid().ToString("N");
        var stopwatch = Stopwatch.StartNew();
        var text = "";
        Guid? assistantId = null;
        string? finalType = null, finalContent = null, finalStatus = null, error = null;
        TimeSpan? firstDelta = null;
        int attempts = 0, resumes = 0;
        while (finalType is null && error is null)
        {
            if (stopwatch.Elapsed > Deadline)
            {
                error = $"no final event within {Deadline.TotalSeconds:F0} s";
                break;
            }
            attempts++;
            HttpResponseMessage? response = null;
            try
            {
                if (assistantId is null)
                {
                    response = await SendOnceAsync(() =>
                    {
                        var r = Request(HttpMethod.Post, $"api/conversations/{conversationId}/messages", new { content, model });
                        r.Headers.Add("Idempotency-Key", key);
                        return r;
                    }, stream: true, stop);
                }
                else
                {
                    resumes++;
                    response = await SendOnceAsync(() =>
                    {
                        var r = Request(HttpMethod.Get, $"api/conversations/{conversationId}/messages/{assistantId}/events");
                        r.Headers.Add("Last-Event-ID", text.Length.ToString(System.Globalization.CultureInfo.InvariantCulture));
                        return r;
                    }, stream: true, stop);
                }
                if (IsRetryable(response.StatusCode))
                {
                    await Task.Delay(RetryDelay, stop);
                    continue;
                }
                if (response.StatusCode != HttpStatusCode.OK)
                {
                    error = $"HTTP {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(stop)}";
                    break;
                }
                await foreach (var e in response.ReadEventsAsync(stop))
                {
                    switch (e.Event)
                    {
                        case "user":
                            // A (replayed) POST starts from the beginning.
                            text = "";
                            break;
                        case "start":
                            assistantId = e.Json.GetProperty("messageId").GetGuid();
                            break;
                        case "delta":
                            var delta = e.Json.GetProperty("text").GetString()!;
                            text += delta;
                            firstDelta ??= stopwatch.Elapsed;
                            if (e.Id != text.Length.ToString(System.Globalization.CultureInfo.InvariantCulture))
                            {
                                error = $"delta id {e.Id} does not match the text length {text.Length}";
                            }
                            break;
                        case "done" or "error":
                            finalType = e.Event;
                            var root = e.Json;
                            if (root.TryGetProperty("content", out var c))
                            {
                                finalContent = c.GetString();
                            }
                            if (root.TryGetProperty(e.Event == "done" ? "status" : "messageStatus", out var s) && s.ValueKind == JsonValueKind.String)
                            {
                                finalStatus = s.GetString();
                            }
                            if (root.TryGetProperty(e.Event == "done" ? "id" : "messageId", out var id) && id.ValueKind == JsonValueKind.String)
                            {
                                assistantId ??= id.GetGuid();
                            }
                            break;
                    }
                    if (finalType is not null || error is not null)
                    {
                        break;
                    }
                }
                // No final event: the connection broke or the replica is stopping; resume (or re-send).
            }
            catch (Exception e) when (IsTransient(e) && !stop.IsCancellationRequested)
            {
                await Task.Delay(RetryDelay, CancellationToken.None);
            }
            finally
            {
                response?.Dispose();
            }
        }
        return new ChatOutcome(key, conversationId, content, assistantId, text, finalType, finalContent, finalStatus, attempts, resumes, firstDelta, stopwatch.Elapsed, error);
    }

    /// <summary>Resumes a finished answer from <paramref name="offset"/>; returns the text after it and the final event's type.</summary>
    public async Task<(string Text, string? Final, TimeSpan Duration)> ResumeAsync(Guid conversationId, Guid messageId, int offset)
    {
        var stopwatch = Stopwatch.StartNew();
        var text = "";
        while (stopwatch.Elapsed < Deadline)
        {
            HttpResponseMessage? response = null;
            try
            {
                response = await SendOnceAsync(() =>
                {
                    var r = Request(HttpMethod.Get, $"api/conversations/{conversationId}/messages/{messageId}/events");
                    r.Headers.Add("Last-Event-ID", (offset + text.Length).ToString(System.Globalization.CultureInfo.InvariantCulture));
                    return r;
                }, stream: true, default);
                if (IsRetryable(response.StatusCode))
                {
                    await Task.Delay(RetryDelay);
                    continue;
                }
                response.EnsureSuccessStatusCode();
                await foreach (var e in response.ReadEventsAsync())
                {
                    if (e.Event == "delta")
                    {
                        text += e.Json.GetProperty("text").GetString();
                    }
                    else if (e.Event is "done" or "error")
                    {
                        return (text, e.Event, stopwatch.Elapsed);
                    }
                }
            }
            catch (Exception e) when (IsTransient(e))
            {
                await Task.Delay(RetryDelay);
            }
            finally
            {
                response?.Dispose();
            }
        }
        throw new TimeoutException($"resume of {messageId} from {offset} found no final event within {Deadline}");
    }

    /// <summary>Sends with retries on 502/503/504 and connection errors until the deadline.</summary>
    public async Task<HttpResponseMessage> SendAsync(Func<HttpRequestMessage> build, bool stream)
    {
        var stopwatch = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                var response = await SendOnceAsync(build, stream, default);
                if (!IsRetryable(response.StatusCode) || stopwatch.Elapsed > Deadline)
                {
                    return response;
                }
                response.Dispose();
            }
            catch (Exception e) when (IsTransient(e) && stopwatch.Elapsed < Deadline)
            {
            }
            await Task.Delay(RetryDelay);
        }
    }

    private async Task<HttpResponseMessage> SendOnceAsync(Func<HttpRequestMessage> build, bool stream, CancellationToken ct)
    {
        Interlocked.Increment(ref _requests);
        using var request = build();
        var at = DateTime.UtcNow;
        try
        {
            if (stream)
            {
                request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
            }
            var response = stream
                ? await Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct)
                : await Http.SendAsync(request, ct);
            if ((int)response.StatusCode >= 500)
            {
                _failedAttempts.Enqueue((at, $"{request.Method} {request.RequestUri}: HTTP {(int)response.StatusCode}"));
            }
            return response;
        }
        catch (Exception e) when (IsTransient(e) && !ct.IsCancellationRequested)
        {
            _failedAttempts.Enqueue((at, $"{request.Method} {request.RequestUri}: {e.GetType().Name} {e.Message}"));
            throw;
        }
    }

    /// <summary>
    /// Sends one message without asking for a stream and waits for the JSON answer (user and assistant
    /// message), sending the same request with the same <c>Idempotency-Key</c> again on 502/503/504 or a
    /// connection error, as the documented client contract says.
    /// </summary>
    public async Task<ChatOutcome> ChatJsonAsync(Guid conversationId, string content, string? model = null)
    {
        var key = Guid.NewGuid().ToString("N");
        var stopwatch = Stopwatch.StartNew();
        var attempts = 0;
        string? error = null;
        while (true)
        {
            if (stopwatch.Elapsed > Deadline)
            {
                error ??= $"no answer within {Deadline.TotalSeconds:F0} s";
                break;
            }
            attempts++;
            try
            {
                using var response = await SendOnceAsync(() =>
                {
                    var r = Request(HttpMethod.Post, $"api/conversations/{conversationId}/messages", new { content, model });
                    r.Headers.Add("Idempotency-Key", key);
                    return r;
                }, stream: false, default);
                var body = await response.Content.ReadAsStringAsync();
                if (IsRetryable(response.StatusCode))
                {
                    error = $"HTTP {(int)response.StatusCode}";
                    await Task.Delay(RetryDelay);
                    continue;
                }
                if (response.StatusCode != HttpStatusCode.OK)
                {
                    return new ChatOutcome(key, conversationId, content, null, "", null, null, null, attempts, 0, null, stopwatch.Elapsed,
                        $"HTTP {(int)response.StatusCode}: {body}");
                }
                using var json = JsonDocument.Parse(body);
                var assistant = json.RootElement.GetProperty("assistantMessage");
                var text = assistant.GetProperty("content").GetString() ?? "";
                var status = assistant.GetProperty("status").GetString();
                return new ChatOutcome(key, conversationId, content, assistant.GetProperty("id").GetGuid(), text,
                    status is "complete" or "stopped" ? "done" : "error", text, status, attempts, 0, stopwatch.Elapsed, stopwatch.Elapsed, null);
            }
            catch (Exception e) when (IsTransient(e))
            {
                error = e.Message;
                await Task.Delay(RetryDelay);
            }
        }
        return new ChatOutcome(key, conversationId, content, null, "", null, null, null, attempts, 0, null, stopwatch.Elapsed, error);
    }

    private HttpRequestMessage Request(HttpMethod method, string path, object? body = null)
    {
        var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Token);
        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }
        return request;
    }

    private bool IsRetryable(HttpStatusCode status) =>
        (int)status is 502 or 503 or 504 || (RetryServerErrors && (int)status >= 500);

    private static bool IsTransient(Exception e) =>
        e is HttpRequestException or IOException or TaskCanceledException or HttpIOException;
}
