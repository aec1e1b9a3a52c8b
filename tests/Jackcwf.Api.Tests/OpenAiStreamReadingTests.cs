using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Text;
using System.Text.Json;
using Jackcwf.Api.Ai;
using Microsoft.Extensions.AI;
using OpenAI;

namespace Jackcwf.Api.Tests;

/// <summary>
/// <see cref="OpenAiStreamingChatClient"/> against Microsoft.Extensions.AI's own OpenAI client on the
/// same recorded streams: the same updates (every field but the SDK objects behind them), the same
/// failures, the same request on the wire.
/// </summary>
public sealed class OpenAiStreamReadingTests
{
    private const string Head = """{"id":"chatcmpl-1","object":"chat.completion.chunk","model":"gpt-4o-mini-2024","system_fingerprint":"fp_1","created":1733400000""";

    public static TheoryData<string, string> Streams => new()
    {
        {
            "text, then a usage-only final chunk",
            Sse(
                Head + ""","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}""",
                Head + ""","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}]}""",
                Head + ""","choices":[{"index":0,"delta":{"content":" wörld ✓"},"logprobs":null,"finish_reason":null}]}""",
                Head + ""","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}""",
                Head + ""","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13,"prompt_tokens_details":{"cached_tokens":2,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":1,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}""",
                "[DONE]")
        },
        {
            "parallel tool calls, arguments in pieces",
            Sse(
                Head + ""","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]}""",
                Head + ""","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"get_time","arguments":""}}]},"finish_reason":null}]}""",
                Head + ""","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]},"finish_reason":null}]}""",
                Head + ""","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{\"zone\":\"UTC\"}"}}]},"finish_reason":null}]}""",
                Head + ""","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\",\"days\":[1,2]}"}}]},"finish_reason":null}]}""",
                Head + ""","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}],"usage":null}""",
                Head + ""","choices":[],"usage":{"prompt_tokens":20,"completion_tokens":30,"total_tokens":50}}""",
                "[DONE]")
        },
        {
            "tool call with arguments that are not JSON, and one without a name",
            Sse(
                Head + ""","choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_x","type":"function","function":{"name":"f","arguments":"{not json"}},{"index":1,"id":"call_y","type":"function","function":{"arguments":"{}"}}]},"finish_reason":null}]}""",
                Head + ""","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}""",
                "[DONE]")
        },
        {
            "refusal alone",
            Sse(
                Head + ""","choices":[{"index":0,"delta":{"role":"assistant","refusal":""},"finish_reason":null}]}""",
                Head + ""","choices":[{"index":0,"delta":{"refusal":"I can't help "},"finish_reason":null}]}""",
                Head + ""","choices":[{"index":0,"delta":{"refusal":"with that."},"finish_reason":null}]}""",
                Head + ""","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}""",
                "[DONE]")
        },
        {
            "refusal and a tool call",
            Sse(
                Head + ""","choices":[{"index":0,"delta":{"role":"assistant","refusal":"No."},"finish_reason":null}]}""",
                Head + ""","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_r","type":"function","function":{"name":"g","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}""",
                "[DONE]")
        },
        {
            "an error event in the stream",
            Sse(
                Head + ""","choices":[{"index":0,"delta":{"role":"assistant","content":"Partial"},"finish_reason":null}]}""",
                """{"error":{"message":"The server had an error","type":"server_error","param":null,"code":null}}""",
                "[DONE]")
        },
        {
            "empty choices, unknown fields, comments, event names, CRLF, no [DONE]",
            ": keep-alive\r\n\r\nevent: chunk\r\n"
            + Sse(
                """{"id":"x","created":1,"model":"","choices":[],"extra":{"a":[1,{"b":null}]},"service_tier":"default","x_groq":{"id":"q"}}""",
                """{"id":"x","created":1,"model":"m2","choices":[{"index":0,"delta":{"role":"assistant","content":"A","reasoning_content":"think","unknown":[{"x":1}]},"logprobs":{"content":[{"token":"A","logprob":-0.1,"bytes":[65],"top_logprobs":[]}]},"finish_reason":null,"extra":true}]}""",
                """{"id":"y","created":2,"model":"m3","choices":[{"index":0,"delta":{"content":"B"},"finish_reason":"length"},{"index":1,"delta":{"content":"other choice"},"finish_reason":"stop"}]}""",
                """{"choices":[{"delta":null,"finish_reason":null}]}""").Replace("\n", "\r\n")
        },
        {
            "data split over two lines, and no chunk but the end",
            "data: {\"id\":\"s\",\"created\":5,\ndata: \"choices\":[{\"index\":0,\"delta\":{\"content\":\"joined\"}}]}\n\n" + Sse("[DONE]")
        },
        {
            "an OpenAI-compatible server: upper-case finish reason, no usage, no id",
            Sse(
                """{"object":"chat.completion.chunk","created":1733400001,"model":"llama3","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}""",
                """{"object":"chat.completion.chunk","created":1733400001,"model":"llama3","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"STOP"}]}""",
                "[DONE]")
        },
    };

    [Theory]
    [MemberData(nameof(Streams))]
    public async Task TheStreamGivesTheUpdatesMicrosoftExtensionsAiWouldGive(string name, string stream)
    {
        var expected = await Collect(Reference(_ => Ok(stream)));
        var actual = await Collect(Fast(_ => Ok(stream)));

        Assert.True(expected.Error is null, $"{name}: {expected.Error}");
        Assert.Null(actual.Error);
        Assert.Equal(expected.Updates, actual.Updates);
        Assert.NotEmpty(actual.Updates);
        // Read here, not by the SDK: no SDK object behind any update.
        Assert.All(actual.Raw, r => Assert.Null(r));
        Assert.Contains(expected.Raw, r => r is not null);
    }

    public static TheoryData<string, string> Failing => new()
    {
        { "malformed JSON", Sse(Head + ""","choices":[{"index":0,"delta":{"content":"a"}}]}""", """{"id":"x","choices":[""") },
        { "unknown finish reason", Sse(Head + ""","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":"weird"}]}""") },
        { "unknown role", Sse(Head + ""","choices":[{"index":0,"delta":{"role":"robot","content":"a"}}]}""") },
        { "not an object", Sse(Head + ""","choices":[{"index":0,"delta":{"content":"a"}}]}""", "[1,2]") },
        { "created not a number", Sse("""{"id":"x","created":"soon","choices":[]}""") },
    };

    [Theory]
    [MemberData(nameof(Failing))]
    public async Task AStreamTheSdkFailsOnFailsTheSameWay(string name, string stream)
    {
        var expected = await Collect(Reference(_ => Ok(stream)));
        var actual = await Collect(Fast(_ => Ok(stream)));

        Assert.True(expected.Error is not null, name);
        Assert.Equal(expected.Updates, actual.Updates);
        Assert.NotNull(actual.Error);
        Assert.Equal(Kind(expected.Error), Kind(actual.Error));
    }

    [Fact]
    public async Task AConnectionCutMidStreamFailsWithTheSameExceptionAfterTheSameUpdates()
    {
        var head = Sse(
            Head + ""","choices":[{"index":0,"delta":{"role":"assistant","content":"One"},"finish_reason":null}]}""",
            Head + ""","choices":[{"index":0,"delta":{"content":" two"},"finish_reason":null}]}""");
        HttpResponseMessage Cut(HttpRequestMessage _) => new(HttpStatusCode.OK)
        {
            Content = new StreamContent(new CutStream(Encoding.UTF8.GetBytes(head + "data: {\"id\":\"chatcmpl-1\",\"cho"))),
        };

        var expected = await Collect(Reference(Cut));
        var actual = await Collect(Fast(Cut));

        Assert.IsType<IOException>(expected.Error);
        Assert.IsType<IOException>(actual.Error);
        Assert.Equal(2, actual.Updates.Count);
        Assert.Equal(expected.Updates, actual.Updates);
    }

    [Theory]
    [InlineData(429)]
    [InlineData(500)]
    [InlineData(401)]
    public async Task AnErrorStatusFailsWithTheSdksExceptionAndRetryAfter(int status)
    {
        HttpResponseMessage Refuse(HttpRequestMessage _)
        {
            var r = new HttpResponseMessage((HttpStatusCode)status) { Content = new StringContent("""{"error":{"message":"sk-secret quota","type":"x"}}""", Encoding.UTF8, "application/json") };
            r.Headers.TryAddWithoutValidation("retry-after", "7");
            return r;
        }

        var expected = await Collect(Reference(Refuse));
        var actual = await Collect(Fast(Refuse));

        var e = Assert.IsType<ClientResultException>(expected.Error);
        var a = Assert.IsType<ClientResultException>(actual.Error);
        Assert.Equal(e.Status, a.Status);
        Assert.Empty(actual.Updates);
        var failure = ProviderFailure.Classify(a, Providers.OpenAI);
        Assert.Equal(ProviderFailure.Classify(e, Providers.OpenAI), failure);
        Assert.Equal(TimeSpan.FromSeconds(7), failure.RetryAfter);
    }

    [Fact]
    public async Task TheRequestOnTheWireIsTheOneMicrosoftExtensionsAiSends()
    {
        var bodies = new List<string>();
        HttpResponseMessage Record(HttpRequestMessage request)
        {
            bodies.Add(request.Content!.ReadAsStringAsync().GetAwaiter().GetResult());
            return Ok(Sse(Head + ""","choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":"stop"}]}""", "[DONE]"));
        }
        var options = new ChatOptions
        {
            Temperature = 0.2f,
            MaxOutputTokens = 100,
            StopSequences = ["END"],
            Seed = 7,
            ResponseFormat = ChatResponseFormat.ForJsonSchema(JsonDocument.Parse("""{"type":"object","properties":{"a":{"type":"string"}}}""").RootElement, "answer"),
            Tools = [AIFunctionFactory.Create((string city) => city, "get_weather", "The weather")],
            ToolMode = ChatToolMode.Auto,
            AdditionalProperties = new() { ["strict"] = true },
            RawRepresentationFactory = _ => new OpenAI.Chat.ChatCompletionOptions { EndUserId = "u-1" },
        };
        List<ChatMessage> messages = [new(ChatRole.System, "be brief"), new(ChatRole.User, "weather?")];

        await Collect(Reference(Record), messages, options);
        await Collect(Fast(Record), messages, options);

        Assert.Equal(2, bodies.Count);
        Assert.Equal(bodies[0], bodies[1]);
        Assert.Contains("\"stream\":true", bodies[1]);
    }

    [Fact]
    public async Task NonStreamedCallsAreMicrosoftExtensionsAisOwn()
    {
        static HttpResponseMessage Answer(HttpRequestMessage _) => new(HttpStatusCode.OK)
        {
            Content = new StringContent("""{"id":"c","object":"chat.completion","created":1733400000,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Paris."},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}""", Encoding.UTF8, "application/json"),
        };

        var response = await Fast(Answer).GetResponseAsync("capital?", cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal("Paris.", response.Text);
        Assert.Equal(5, response.Usage?.TotalTokenCount);
    }

    private static IChatClient Reference(Func<HttpRequestMessage, HttpResponseMessage> answer) =>
        new OpenAIClient(new ApiKeyCredential("sk-test"), Options(answer)).GetChatClient("gpt-4o-mini").AsIChatClient();

    private static IChatClient Fast(Func<HttpRequestMessage, HttpResponseMessage> answer)
    {
        var options = Options(answer);
        return new OpenAiStreamingChatClient(new OpenAIClient(new ApiKeyCredential("sk-test"), options), options, "gpt-4o-mini");
    }

    private static OpenAIClientOptions Options(Func<HttpRequestMessage, HttpResponseMessage> answer) => new()
    {
        Endpoint = new Uri("http://upstream.test/v1"),
        Transport = new HttpClientPipelineTransport(new HttpClient(new Handler(answer))),
        RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
        ClientLoggingOptions = new ClientLoggingOptions { EnableLogging = false },
        NetworkTimeout = TimeSpan.FromSeconds(30),
    };

    private sealed record Collected(List<string> Updates, List<object?> Raw, Exception? Error);

    private static async Task<Collected> Collect(IChatClient client, IEnumerable<ChatMessage>? messages = null, ChatOptions? options = null)
    {
        var updates = new List<string>();
        var raw = new List<object?>();
        try
        {
            await foreach (var u in client.GetStreamingResponseAsync(messages ?? [new(ChatRole.User, "hi")], options, TestContext.Current.CancellationToken))
            {
                updates.Add(Describe(u));
                raw.Add(u.RawRepresentation);
            }
            return new(updates, raw, null);
        }
        catch (Exception ex)
        {
            return new(updates, raw, ex);
        }
    }

    /// <summary>Every field of an update and its contents, the SDK objects behind them left out.</summary>
    private static string Describe(ChatResponseUpdate u)
    {
        var s = new StringBuilder();
        s.Append($"id={u.ResponseId} msg={u.MessageId} created={u.CreatedAt:O} finish={u.FinishReason} model={u.ModelId} role={u.Role} author={u.AuthorName} conv={u.ConversationId} props={Props(u.AdditionalProperties)}");
        foreach (var c in u.Contents)
        {
            s.Append(" | ").Append(c.GetType().Name).Append(' ');
            s.Append(c switch
            {
                TextContent t => $"'{t.Text}'",
                TextReasoningContent r => $"'{r.Text}'",
                UsageContent usage => JsonSerializer.Serialize(usage.Details, AIJsonUtilities.DefaultOptions),
                FunctionCallContent f => $"{f.CallId} {f.Name} {JsonSerializer.Serialize(f.Arguments, AIJsonUtilities.DefaultOptions)} {f.Exception?.GetType().Name}",
                ErrorContent e => $"{e.Message} {e.ErrorCode} {e.Details}",
                _ => JsonSerializer.Serialize(c, AIJsonUtilities.DefaultOptions),
            });
            s.Append(" props=").Append(Props(c.AdditionalProperties));
        }
        return s.ToString();
    }

    private static string Props(AdditionalPropertiesDictionary? p) =>
        p is null ? "-" : string.Join(",", p.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}={kv.Value}"));

    private static string Kind(Exception? ex) => ex switch
    {
        JsonException => nameof(JsonException),
        null => "none",
        _ => ex.GetType().Name,
    };

    private static string Sse(params string[] data) => string.Concat(data.Select(d => $"data: {d}\n\n"));

    private static HttpResponseMessage Ok(string sse) => new(HttpStatusCode.OK)
    {
        Content = new StringContent(sse, Encoding.UTF8, "text/event-stream"),
    };

    private sealed class Handler(Func<HttpRequestMessage, HttpResponseMessage> answer) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            Task.FromResult(answer(request));
    }

    /// <summary>The given bytes, then the connection breaking.</summary>
    private sealed class CutStream(byte[] bytes) : Stream
    {
        private int _position;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _position; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count)
        {
            if (_position >= bytes.Length)
            {
                throw new IOException("The connection was reset.");
            }
            var n = Math.Min(count, bytes.Length - _position);
            Array.Copy(bytes, _position, buffer, offset, n);
            _position += n;
            return n;
        }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
