using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Jackcwf.Testing;

/// <summary>
/// An in-process HTTP server that speaks the OpenAI chat completions and Anthropic messages wire
/// formats, so the official SDKs (and the service using them) can be tested without a network.
/// </summary>
public sealed class FakeLlmServer : IAsyncDisposable
{
    private readonly Lock _gate = new();
    private readonly Queue<FakeScenario> _queue = new();
    private readonly List<FakeLlmRequest> _requests = [];
    private readonly CancellationTokenSource _stopping = new();
    private WebApplication? _app;
    private FakeScenario _default = FakeScenario.Echo;
    private string? _requiredApiKey;
    private int _sequence;

    private FakeLlmServer()
    {
    }

    /// <summary><c>http://127.0.0.1:{port}</c></summary>
    public Uri BaseUrl { get; private set; } = null!;

    /// <summary>For <c>OpenAIClientOptions.Endpoint</c> and <c>OPENAI_BASE_URL</c>: the base URL plus <c>/v1</c>.</summary>
    public Uri OpenAiBaseUrl => new(BaseUrl, "v1");

    /// <summary>For <c>AnthropicClient.BaseUrl</c> and <c>ANTHROPIC_BASE_URL</c>: the base URL without <c>/v1</c>.</summary>
    public Uri AnthropicBaseUrl => BaseUrl;

    public int Port => BaseUrl.Port;

    /// <summary>Answer used when no scenario is queued. Echo by default.</summary>
    public FakeScenario Default
    {
        get { lock (_gate) { return _default; } }
        set { lock (_gate) { _default = value ?? throw new ArgumentNullException(nameof(value)); } }
    }

    /// <summary>When set, chat requests whose key differs get the provider's 401 error.</summary>
    public string? RequiredApiKey
    {
        get { lock (_gate) { return _requiredApiKey; } }
        set { lock (_gate) { _requiredApiKey = value; } }
    }

    /// <summary>Ids listed by <c>GET /v1/models</c>.</summary>
    public IReadOnlyList<string> Models { get; set; } = ["gpt-4o-mini", "gpt-4o", "fake-model"];

    /// <summary>Number of requests received (every route).</summary>
    public int RequestCount
    {
        get { lock (_gate) { return _requests.Count; } }
    }

    /// <summary>Snapshot of the requests received, oldest first.</summary>
    public IReadOnlyList<FakeLlmRequest> Requests
    {
        get { lock (_gate) { return [.. _requests]; } }
    }

    /// <summary>The requests to the chat routes (OpenAI chat completions, Anthropic messages).</summary>
    public IReadOnlyList<FakeLlmRequest> ChatRequests
    {
        get { lock (_gate) { return [.. _requests.Where(r => r.Provider != FakeLlmProvider.Other)]; } }
    }

    public static async Task<FakeLlmServer> StartAsync(CancellationToken cancellationToken = default)
    {
        var server = new FakeLlmServer();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(o => o.Listen(IPAddress.Loopback, 0));
        // Requests that hang are cancelled through _stopping; a short timeout keeps disposal quick regardless.
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(2));
        var app = builder.Build();
        app.MapPost("/v1/chat/completions", server.HandleOpenAiChatAsync);
        app.MapPost("/chat/completions", server.HandleOpenAiChatAsync);
        app.MapGet("/v1/models", server.HandleOpenAiModelsAsync);
        app.MapPost("/v1/messages", server.HandleAnthropicMessagesAsync);
        app.MapFallback(server.HandleUnknownAsync);
        await app.StartAsync(cancellationToken);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!
            .Addresses.Single();
        server.BaseUrl = new Uri(new Uri(address).GetLeftPart(UriPartial.Authority) + "/");
        server._app = app;
        return server;
    }

    /// <summary>
    /// The service's provider variables pointing at this server (see docs/configuration.md), to pass to
    /// <see cref="ApiProcessOptions.Environment"/>; <c>OLLAMA_BASE_URL</c> only when <paramref name="includeOllama"/>.
    /// </summary>
    public Dictionary<string, string?> ProviderEnvironment(
        string openAiKey = "sk-fake-openai", string anthropicKey = "sk-ant-fake", bool includeOllama = false)
    {
        var environment = new Dictionary<string, string?>
        {
            ["OPENAI_API_KEY"] = openAiKey,
            ["OPENAI_BASE_URL"] = OpenAiBaseUrl.ToString(),
            ["ANTHROPIC_API_KEY"] = anthropicKey,
            ["ANTHROPIC_BASE_URL"] = AnthropicBaseUrl.ToString(),
        };
        if (includeOllama)
        {
            environment["OLLAMA_BASE_URL"] = OpenAiBaseUrl.ToString();
        }

        return environment;
    }

    /// <summary>Use <paramref name="scenario"/> for the next <paramref name="times"/> chat requests, then fall back to <see cref="Default"/>.</summary>
    /// <remarks>SDKs retry 429 and 5xx by themselves: queue an error as many times as attempts are expected, or set <see cref="Default"/>.</remarks>
    public void Enqueue(FakeScenario scenario, int times = 1)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        lock (_gate)
        {
            for (var i = 0; i < times; i++)
            {
                _queue.Enqueue(scenario);
            }
        }
    }

    /// <summary>Forget requests and queued scenarios; <see cref="Default"/> becomes echo again.</summary>
    public void Reset()
    {
        lock (_gate)
        {
            _queue.Clear();
            _requests.Clear();
            _default = FakeScenario.Echo;
            _requiredApiKey = null;
        }
    }

    /// <summary>Waits until at least <paramref name="count"/> chat requests have arrived.</summary>
    public async Task WaitForChatRequestsAsync(int count, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (ChatRequests.Count < count)
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Expected {count} chat request(s) at the fake LLM within {timeout}, got {ChatRequests.Count}.");
            }

            await Task.Delay(20);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }

        _stopping.Dispose();
    }

    private FakeScenario Next()
    {
        lock (_gate)
        {
            return _queue.TryDequeue(out var scenario) ? scenario : _default;
        }
    }

    private async Task<(JsonObject? Body, FakeLlmRequest Request)> RecordAsync(HttpContext context, FakeLlmProvider provider)
    {
        using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
        var raw = await reader.ReadToEndAsync(context.RequestAborted);
        JsonObject? body = null;
        try
        {
            body = raw.Length == 0 ? null : JsonNode.Parse(raw) as JsonObject;
        }
        catch (JsonException)
        {
            // Recorded as is; the handler answers 400 like the real APIs.
        }

        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, values) in context.Request.Headers)
        {
            headers[name.ToLowerInvariant()] = values.ToString();
        }

        var request = new FakeLlmRequest(
            context.Request.Method,
            context.Request.Path + context.Request.QueryString,
            provider,
            body?["model"]?.GetValueKind() == JsonValueKind.String ? body["model"]!.GetValue<string>() : null,
            body?["stream"]?.GetValueKind() == JsonValueKind.True,
            headers,
            raw,
            body is null ? null : LastUserText(body),
            DateTimeOffset.UtcNow);
        lock (_gate)
        {
            _requests.Add(request);
        }

        return (body, request);
    }

    private async Task HandleUnknownAsync(HttpContext context)
    {
        await RecordAsync(context, FakeLlmProvider.Other);
        await WriteOpenAiErrorAsync(context, 404, $"Unknown route {context.Request.Method} {context.Request.Path} on the fake LLM server.", null);
    }

    private async Task HandleOpenAiModelsAsync(HttpContext context)
    {
        await RecordAsync(context, FakeLlmProvider.Other);
        var data = new JsonArray();
        foreach (var id in Models)
        {
            data.Add(new JsonObject { ["id"] = id, ["object"] = "model", ["created"] = 1700000000, ["owned_by"] = "fake" });
        }

        await WriteJsonAsync(context, 200, new JsonObject { ["object"] = "list", ["data"] = data });
    }

    private async Task HandleOpenAiChatAsync(HttpContext context)
    {
        var (body, request) = await RecordAsync(context, FakeLlmProvider.OpenAI);
        var scenario = Next();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, _stopping.Token);
        var ct = cts.Token;
        try
        {
            if (body?["messages"] is not JsonArray)
            {
                await WriteOpenAiErrorAsync(context, 400, "'messages' is a required property", null);
                return;
            }

            if (!KeyAccepted(request))
            {
                await WriteOpenAiErrorAsync(context, 401, "Incorrect API key provided.", null);
                return;
            }

            if (scenario.Hang)
            {
                await Task.Delay(Timeout.Infinite, ct);
            }

            await DelayAsync(scenario.FirstTokenDelay, ct);
            if (scenario is { ErrorStatus: { } status, StreamErrorAfterChunks: null })
            {
                await WriteOpenAiErrorAsync(context, status, scenario.ErrorMessage, scenario.RetryAfter);
                return;
            }

            var text = AnswerText(scenario, request);
            var tool = scenario.ToolCall;
            var inputTokens = scenario.InputTokens ?? CountInputWords(body);
            var outputTokens = scenario.OutputTokens ?? FakeScenario.CountWords(text) + (tool is null ? 0 : FakeScenario.CountWords(tool.ArgumentsJson));
            var model = request.Model ?? "fake-model";
            var id = $"chatcmpl-fake{Interlocked.Increment(ref _sequence)}";
            var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            var usage = new JsonObject
            {
                ["prompt_tokens"] = inputTokens,
                ["completion_tokens"] = outputTokens,
                ["total_tokens"] = inputTokens + outputTokens,
            };

            if (!request.Stream)
            {
                if (scenario.FailAfterChunks is not null)
                {
                    context.Abort();
                    return;
                }

                if (scenario.StreamErrorAfterChunks is not null)
                {
                    await WriteOpenAiErrorAsync(context, scenario.ErrorStatus ?? 500, scenario.ErrorMessage, scenario.RetryAfter);
                    return;
                }

                await WriteJsonAsync(context, 200, new JsonObject
                {
                    ["id"] = id,
                    ["object"] = "chat.completion",
                    ["created"] = created,
                    ["model"] = model,
                    ["system_fingerprint"] = "fp_fake",
                    ["choices"] = new JsonArray(new JsonObject
                    {
                        ["index"] = 0,
                        ["message"] = tool is null
                            ? new JsonObject { ["role"] = "assistant", ["content"] = text, ["refusal"] = null }
                            : new JsonObject
                            {
                                ["role"] = "assistant",
                                ["content"] = text.Length == 0 ? null : text,
                                ["refusal"] = null,
                                ["tool_calls"] = new JsonArray(new JsonObject
                                {
                                    ["id"] = tool.Id,
                                    ["type"] = "function",
                                    ["function"] = new JsonObject { ["name"] = tool.Name, ["arguments"] = tool.ArgumentsJson },
                                }),
                            },
                        ["logprobs"] = null,
                        ["finish_reason"] = tool is null ? "stop" : "tool_calls",
                    }),
                    ["usage"] = usage,
                });
                return;
            }

            var includeUsage = body["stream_options"]?["include_usage"]?.GetValueKind() == JsonValueKind.True;
            JsonObject Chunk(JsonObject delta, string? finishReason) => new()
            {
                ["id"] = id,
                ["object"] = "chat.completion.chunk",
                ["created"] = created,
                ["model"] = model,
                ["system_fingerprint"] = "fp_fake",
                ["choices"] = new JsonArray(new JsonObject
                {
                    ["index"] = 0,
                    ["delta"] = delta,
                    ["logprobs"] = null,
                    ["finish_reason"] = finishReason,
                }),
            };

            StartEventStream(context);
            await WriteSseAsync(context, null, Chunk(new JsonObject { ["role"] = "assistant", ["content"] = "", ["refusal"] = null }, null), ct);
            if (scenario.HoldFirstToken is { } held)
            {
                await held.WaitAsync(ct);
            }
            var sent = 0;
            foreach (var piece in FakeScenario.SplitIntoChunks(text))
            {
                if (StopsAt(scenario, sent))
                {
                    break;
                }

                if (sent > 0)
                {
                    await DelayAsync(scenario.ChunkDelay, ct);
                }

                await WriteSseAsync(context, null, Chunk(new JsonObject { ["content"] = piece }, null), ct);
                sent++;
            }

            if (scenario.StreamErrorAfterChunks is not null)
            {
                var (type, code) = OpenAiErrorType(scenario.ErrorStatus ?? 500);
                await WriteSseAsync(context, null, new JsonObject
                {
                    ["error"] = new JsonObject { ["message"] = scenario.ErrorMessage, ["type"] = type, ["param"] = null, ["code"] = code },
                }, ct);
                return;
            }

            if (scenario.FailAfterChunks is not null)
            {
                await AbortMidStreamAsync(context, scenario, ct);
                return;
            }

            if (tool is not null)
            {
                var half = tool.ArgumentsJson.Length / 2;
                await WriteSseAsync(context, null, Chunk(new JsonObject
                {
                    ["tool_calls"] = new JsonArray(new JsonObject
                    {
                        ["index"] = 0,
                        ["id"] = tool.Id,
                        ["type"] = "function",
                        ["function"] = new JsonObject { ["name"] = tool.Name, ["arguments"] = tool.ArgumentsJson[..half] },
                    }),
                }, null), ct);
                await WriteSseAsync(context, null, Chunk(new JsonObject
                {
                    ["tool_calls"] = new JsonArray(new JsonObject
                    {
                        ["index"] = 0,
                        ["function"] = new JsonObject { ["arguments"] = tool.ArgumentsJson[half..] },
                    }),
                }, null), ct);
            }

            await WriteSseAsync(context, null, Chunk(new JsonObject(), tool is null ? "stop" : "tool_calls"), ct);
            if (includeUsage)
            {
                await WriteSseAsync(context, null, new JsonObject
                {
                    ["id"] = id,
                    ["object"] = "chat.completion.chunk",
                    ["created"] = created,
                    ["model"] = model,
                    ["system_fingerprint"] = "fp_fake",
                    ["choices"] = new JsonArray(),
                    ["usage"] = usage,
                }, ct);
            }

            await context.Response.WriteAsync("data: [DONE]\n\n", ct);
            await context.Response.Body.FlushAsync(ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            context.Abort();
        }
    }

    private async Task HandleAnthropicMessagesAsync(HttpContext context)
    {
        var (body, request) = await RecordAsync(context, FakeLlmProvider.Anthropic);
        var scenario = Next();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, _stopping.Token);
        var ct = cts.Token;
        try
        {
            if (body?["messages"] is not JsonArray)
            {
                await WriteAnthropicErrorAsync(context, 400, "messages: Field required", null);
                return;
            }

            if (request.ApiKey is null)
            {
                await WriteAnthropicErrorAsync(context, 401, "x-api-key header is required", null);
                return;
            }

            if (!KeyAccepted(request))
            {
                await WriteAnthropicErrorAsync(context, 401, "invalid x-api-key", null);
                return;
            }

            if (scenario.Hang)
            {
                await Task.Delay(Timeout.Infinite, ct);
            }

            await DelayAsync(scenario.FirstTokenDelay, ct);
            if (scenario is { ErrorStatus: { } status, StreamErrorAfterChunks: null })
            {
                await WriteAnthropicErrorAsync(context, status, scenario.ErrorMessage, scenario.RetryAfter);
                return;
            }

            var text = AnswerText(scenario, request);
            var tool = scenario.ToolCall;
            var inputTokens = scenario.InputTokens ?? CountInputWords(body);
            var outputTokens = scenario.OutputTokens ?? FakeScenario.CountWords(text) + (tool is null ? 0 : FakeScenario.CountWords(tool.ArgumentsJson));
            var model = request.Model ?? "claude-fake";
            var id = $"msg_fake{Interlocked.Increment(ref _sequence)}";

            if (!request.Stream)
            {
                if (scenario.FailAfterChunks is not null)
                {
                    context.Abort();
                    return;
                }

                if (scenario.StreamErrorAfterChunks is not null)
                {
                    await WriteAnthropicErrorAsync(context, scenario.ErrorStatus ?? 529, scenario.ErrorMessage, scenario.RetryAfter);
                    return;
                }

                await WriteJsonAsync(context, 200, new JsonObject
                {
                    ["id"] = id,
                    ["type"] = "message",
                    ["role"] = "assistant",
                    ["model"] = model,
                    ["content"] = AnthropicContent(text, tool),
                    ["stop_reason"] = tool is null ? "end_turn" : "tool_use",
                    ["stop_sequence"] = null,
                    ["usage"] = AnthropicUsage(inputTokens, outputTokens),
                });
                return;
            }

            StartEventStream(context);
            await WriteSseAsync(context, "message_start", new JsonObject
            {
                ["type"] = "message_start",
                ["message"] = new JsonObject
                {
                    ["id"] = id,
                    ["type"] = "message",
                    ["role"] = "assistant",
                    ["model"] = model,
                    ["content"] = new JsonArray(),
                    ["stop_reason"] = null,
                    ["stop_sequence"] = null,
                    ["usage"] = AnthropicUsage(inputTokens, 1),
                },
            }, ct);
            await WriteSseAsync(context, "content_block_start", new JsonObject
            {
                ["type"] = "content_block_start",
                ["index"] = 0,
                ["content_block"] = new JsonObject { ["type"] = "text", ["text"] = "" },
            }, ct);
            await WriteSseAsync(context, "ping", new JsonObject { ["type"] = "ping" }, ct);
            var sent = 0;
            foreach (var piece in FakeScenario.SplitIntoChunks(text))
            {
                if (StopsAt(scenario, sent))
                {
                    break;
                }

                if (sent > 0)
                {
                    await DelayAsync(scenario.ChunkDelay, ct);
                }

                await WriteSseAsync(context, "content_block_delta", new JsonObject
                {
                    ["type"] = "content_block_delta",
                    ["index"] = 0,
                    ["delta"] = new JsonObject { ["type"] = "text_delta", ["text"] = piece },
                }, ct);
                sent++;
            }

            if (scenario.FailAfterChunks is not null)
            {
                await AbortMidStreamAsync(context, scenario, ct);
                return;
            }

            if (scenario.StreamErrorAfterChunks is not null)
            {
                await WriteSseAsync(context, "error", new JsonObject
                {
                    ["type"] = "error",
                    ["error"] = new JsonObject { ["type"] = AnthropicErrorType(scenario.ErrorStatus ?? 529), ["message"] = scenario.ErrorMessage },
                }, ct);
                return;
            }

            await WriteSseAsync(context, "content_block_stop", new JsonObject { ["type"] = "content_block_stop", ["index"] = 0 }, ct);
            if (tool is not null)
            {
                await WriteSseAsync(context, "content_block_start", new JsonObject
                {
                    ["type"] = "content_block_start",
                    ["index"] = 1,
                    ["content_block"] = new JsonObject { ["type"] = "tool_use", ["id"] = tool.Id, ["name"] = tool.Name, ["input"] = new JsonObject() },
                }, ct);
                var half = tool.ArgumentsJson.Length / 2;
                foreach (var part in new[] { tool.ArgumentsJson[..half], tool.ArgumentsJson[half..] })
                {
                    await WriteSseAsync(context, "content_block_delta", new JsonObject
                    {
                        ["type"] = "content_block_delta",
                        ["index"] = 1,
                        ["delta"] = new JsonObject { ["type"] = "input_json_delta", ["partial_json"] = part },
                    }, ct);
                }

                await WriteSseAsync(context, "content_block_stop", new JsonObject { ["type"] = "content_block_stop", ["index"] = 1 }, ct);
            }

            await WriteSseAsync(context, "message_delta", new JsonObject
            {
                ["type"] = "message_delta",
                ["delta"] = new JsonObject { ["stop_reason"] = tool is null ? "end_turn" : "tool_use", ["stop_sequence"] = null },
                ["usage"] = new JsonObject { ["output_tokens"] = outputTokens },
            }, ct);
            await WriteSseAsync(context, "message_stop", new JsonObject { ["type"] = "message_stop" }, ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            context.Abort();
        }
    }

    private static string AnswerText(FakeScenario scenario, FakeLlmRequest request) =>
        scenario.EchoToolResult ? (scenario.Text ?? "") + (request.LastToolResult ?? "")
        : scenario.ToolCall is not null ? scenario.Text ?? ""
        : scenario.Text ?? request.LastUserText ?? "";

    private static JsonArray AnthropicContent(string text, FakeToolCall? tool)
    {
        var content = new JsonArray();
        if (text.Length > 0 || tool is null)
        {
            content.Add(new JsonObject { ["type"] = "text", ["text"] = text });
        }

        if (tool is not null)
        {
            content.Add(new JsonObject { ["type"] = "tool_use", ["id"] = tool.Id, ["name"] = tool.Name, ["input"] = JsonNode.Parse(tool.ArgumentsJson) });
        }

        return content;
    }

    /// <summary>The content of the last tool result in a request body of either wire format.</summary>
    internal static string? LastToolResult(string body)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(body);
        }
        catch (JsonException)
        {
            return null;
        }

        if (root?["messages"] is not JsonArray messages)
        {
            return null;
        }

        for (var i = messages.Count - 1; i >= 0; i--)
        {
            var message = messages[i];
            if (message?["role"]?.GetValueKind() == JsonValueKind.String && message["role"]!.GetValue<string>() == "tool")
            {
                return ContentText(message["content"]);
            }

            if (message?["content"] is JsonArray parts)
            {
                for (var j = parts.Count - 1; j >= 0; j--)
                {
                    if (parts[j]?["type"]?.GetValueKind() == JsonValueKind.String && parts[j]!["type"]!.GetValue<string>() == "tool_result")
                    {
                        return ContentText(parts[j]!["content"]);
                    }
                }
            }
        }

        return null;
    }

    private bool KeyAccepted(FakeLlmRequest request)
    {
        var required = RequiredApiKey;
        return required is null || request.ApiKey == required;
    }

    private static JsonObject AnthropicUsage(int inputTokens, int outputTokens) => new()
    {
        ["input_tokens"] = inputTokens,
        ["cache_creation_input_tokens"] = 0,
        ["cache_read_input_tokens"] = 0,
        ["output_tokens"] = outputTokens,
    };

    private static async Task DelayAsync(TimeSpan delay, CancellationToken ct)
    {
        if (delay > TimeSpan.Zero)
        {
            await Task.Delay(delay, ct);
        }
    }

    private static async Task AbortMidStreamAsync(HttpContext context, FakeScenario scenario, CancellationToken ct)
    {
        // An abort resets the connection, and a reset makes the client's kernel drop bytes it has not
        // read yet; pausing first lets the chunks already sent reach the client like a real dropped stream.
        await Task.Delay(scenario.ChunkDelay > TimeSpan.FromMilliseconds(300) ? scenario.ChunkDelay : TimeSpan.FromMilliseconds(300), ct);
        context.Abort();
    }

    private static void StartEventStream(HttpContext context)
    {
        context.Response.StatusCode = 200;
        context.Response.ContentType = "text/event-stream; charset=utf-8";
        context.Response.Headers.CacheControl = "no-cache";
    }

    private static async Task WriteSseAsync(HttpContext context, string? eventName, JsonNode data, CancellationToken ct)
    {
        var frame = eventName is null
            ? $"data: {data.ToJsonString()}\n\n"
            : $"event: {eventName}\ndata: {data.ToJsonString()}\n\n";
        await context.Response.WriteAsync(frame, ct);
        await context.Response.Body.FlushAsync(ct);
    }

    private static async Task WriteJsonAsync(HttpContext context, int status, JsonNode body)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(body.ToJsonString());
    }

    private static void AddRetryAfter(HttpContext context, TimeSpan? retryAfter)
    {
        if (retryAfter is { } wait)
        {
            context.Response.Headers["retry-after-ms"] = ((long)wait.TotalMilliseconds).ToString(CultureInfo.InvariantCulture);
            context.Response.Headers.RetryAfter = ((long)Math.Ceiling(wait.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        }
    }

    private static Task WriteOpenAiErrorAsync(HttpContext context, int status, string message, TimeSpan? retryAfter)
    {
        var (type, code) = OpenAiErrorType(status);
        AddRetryAfter(context, retryAfter);
        return WriteJsonAsync(context, status, new JsonObject
        {
            ["error"] = new JsonObject { ["message"] = message, ["type"] = type, ["param"] = null, ["code"] = code },
        });
    }

    private static Task WriteAnthropicErrorAsync(HttpContext context, int status, string message, TimeSpan? retryAfter)
    {
        var type = AnthropicErrorType(status);
        AddRetryAfter(context, retryAfter);
        context.Response.Headers["request-id"] = $"req_fake{Guid.NewGuid():N}";
        return WriteJsonAsync(context, status, new JsonObject
        {
            ["type"] = "error",
            ["error"] = new JsonObject { ["type"] = type, ["message"] = message },
        });
    }

    private static bool StopsAt(FakeScenario scenario, int sent) =>
        (scenario.FailAfterChunks is { } failAfter && sent >= failAfter)
        || (scenario.StreamErrorAfterChunks is { } errorAfter && sent >= errorAfter);

    private static (string Type, string? Code) OpenAiErrorType(int status) => status switch
    {
        400 => ("invalid_request_error", null),
        401 => ("invalid_request_error", "invalid_api_key"),
        403 => ("invalid_request_error", "unsupported_country_region_territory"),
        404 => ("invalid_request_error", "model_not_found"),
        429 => ("requests", "rate_limit_exceeded"),
        503 => ("server_error", "service_unavailable"),
        >= 500 => ("server_error", null),
        _ => ("invalid_request_error", null),
    };

    private static string AnthropicErrorType(int status) => status switch
    {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        >= 500 => "api_error",
        _ => "invalid_request_error",
    };

    private static string? LastUserText(JsonNode body)
    {
        if (body["messages"] is not JsonArray messages)
        {
            return null;
        }

        for (var i = messages.Count - 1; i >= 0; i--)
        {
            if (messages[i]?["role"]?.GetValueKind() == JsonValueKind.String && messages[i]!["role"]!.GetValue<string>() == "user")
            {
                return ContentText(messages[i]!["content"]);
            }
        }

        return null;
    }

    private static int CountInputWords(JsonNode body)
    {
        var words = 0;
        if (body["system"] is { } system)
        {
            words += FakeScenario.CountWords(ContentText(system));
        }

        if (body["messages"] is JsonArray messages)
        {
            foreach (var message in messages)
            {
                words += FakeScenario.CountWords(ContentText(message?["content"]));
            }
        }

        return words;
    }

    // Both APIs accept content as a string or as an array of typed parts; only text parts count.
    private static string? ContentText(JsonNode? content) => content switch
    {
        null => null,
        JsonValue value when value.GetValueKind() == JsonValueKind.String => value.GetValue<string>(),
        JsonArray parts => string.Concat(parts
            .Where(p => p?["type"]?.GetValueKind() == JsonValueKind.String && p["type"]!.GetValue<string>() == "text")
            .Select(p => p!["text"]?.GetValue<string>() ?? "")),
        _ => null,
    };
}
