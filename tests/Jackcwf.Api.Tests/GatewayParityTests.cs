using System.ClientModel;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Jackcwf.Testing;
using OpenAI;
using OpenAI.Chat;

namespace Jackcwf.Api.Tests;

/// <summary>
/// The /v1 chat surface beyond plain text, through the official OpenAI SDK, against the fake
/// OpenAI-shaped and Anthropic-shaped upstreams: tools, response formats, sampling parameters,
/// images, and refusals naming what cannot be honoured.
/// </summary>
public sealed class GatewayParityTests(SqliteServiceFixture fx) : IClassFixture<SqliteServiceFixture>
{
    private const string WeatherSchema = """{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false}""";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<(OpenAIClient Sdk, HttpClient Http)> ClientsAsync()
    {
        var u = await fx.CreateUserAsync();
        var r = await u.Http.PostAsJsonAsync("api/keys", new { name = "parity" }, Ct);
        var key = (await r.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("key").GetString()!;
        var http = fx.Api.CreateClient();
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return (new OpenAIClient(new ApiKeyCredential(key), new OpenAIClientOptions { Endpoint = new Uri(fx.Api.BaseUrl, "v1") }), http);
    }

    private static ChatTool Weather() =>
        ChatTool.CreateFunctionTool("get_weather", "Current weather for a city", BinaryData.FromString(WeatherSchema));

    [Theory]
    [InlineData("openai/gpt-4o-mini", false)]
    [InlineData("openai/gpt-4o-mini", true)]
    [InlineData("anthropic/claude-haiku-4-5", false)]
    [InlineData("anthropic/claude-haiku-4-5", true)]
    public async Task AToolCallRoundTripsModelAsksClientAnswersModelReplies(string model, bool stream)
    {
        var (sdk, _) = await ClientsAsync();
        var chat = sdk.GetChatClient(model);
        var options = new ChatCompletionOptions { Tools = { Weather() } };
        List<ChatMessage> messages = [new UserChatMessage("What is the weather in Paris?")];

        fx.Fake.Enqueue(FakeScenario.CallTool("get_weather", """{"city":"Paris"}""", "call_weather_1"));
        var (finish, calls, text) = await CompleteAsync(chat, messages, options, stream);
        Assert.Equal(ChatFinishReason.ToolCalls, finish);
        var call = Assert.Single(calls);
        Assert.Equal("call_weather_1", call.Id);
        Assert.Equal("get_weather", call.FunctionName);
        Assert.Equal("Paris", JsonDocument.Parse(call.FunctionArguments).RootElement.GetProperty("city").GetString());
        Assert.Equal("", text);

        // The provider saw the tool in its own wire format.
        var first = JsonNode.Parse(fx.Fake.ChatRequests[^1].Body)!;
        var tool = first["tools"]![0]!;
        Assert.Equal("get_weather", (tool["function"]?["name"] ?? tool["name"])!.GetValue<string>());

        messages.Add(new AssistantChatMessage([call]));
        messages.Add(new ToolChatMessage("call_weather_1", "18 degrees and sunny"));
        fx.Fake.Enqueue(new FakeScenario { Text = "In Paris it is ", EchoToolResult = true });
        (finish, calls, text) = await CompleteAsync(chat, messages, options, stream);
        Assert.Equal(ChatFinishReason.Stop, finish);
        Assert.Empty(calls);
        Assert.Equal("In Paris it is 18 degrees and sunny", text);
        var second = fx.Fake.ChatRequests[^1];
        Assert.Equal("18 degrees and sunny", second.LastToolResult);
        Assert.Contains("call_weather_1", second.Body);
    }

    private static async Task<(ChatFinishReason? Finish, List<ChatToolCall> Calls, string Text)> CompleteAsync(
        ChatClient chat, List<ChatMessage> messages, ChatCompletionOptions options, bool stream)
    {
        if (!stream)
        {
            ChatCompletion completion = await chat.CompleteChatAsync(messages, options, Ct);
            return (completion.FinishReason, completion.ToolCalls.ToList(), string.Concat(completion.Content.Select(c => c.Text)));
        }
        ChatFinishReason? finish = null;
        var text = new StringBuilder();
        var ids = new Dictionary<int, string>();
        var names = new Dictionary<int, string>();
        var args = new Dictionary<int, StringBuilder>();
        await foreach (var update in chat.CompleteChatStreamingAsync(messages, options, Ct))
        {
            text.Append(string.Concat(update.ContentUpdate.Select(p => p.Text)));
            foreach (var t in update.ToolCallUpdates)
            {
                if (t.ToolCallId is { } id)
                {
                    ids[t.Index] = id;
                }
                if (t.FunctionName is { } name)
                {
                    names[t.Index] = name;
                }
                (args.TryGetValue(t.Index, out var sb) ? sb : args[t.Index] = new StringBuilder()).Append(t.FunctionArgumentsUpdate?.ToString());
            }
            finish ??= update.FinishReason;
        }
        var calls = ids.Keys.Order().Select(i => ChatToolCall.CreateFunctionToolCall(ids[i], names[i], BinaryData.FromString(args[i].ToString()))).ToList();
        return (finish, calls, text.ToString());
    }

    [Theory]
    [InlineData("openai/gpt-4o-mini")]
    [InlineData("anthropic/claude-haiku-4-5")]
    public async Task AJsonSchemaResponseFormatReachesTheProviderAndTheJsonComesBack(string model)
    {
        var (sdk, _) = await ClientsAsync();
        var options = new ChatCompletionOptions
        {
            ResponseFormat = ChatResponseFormat.CreateJsonSchemaFormat("weather_report", BinaryData.FromString(WeatherSchema), jsonSchemaIsStrict: true),
        };
        fx.Fake.Enqueue(FakeScenario.Answer("""{"city":"Paris"}"""));
        ChatCompletion completion = await sdk.GetChatClient(model).CompleteChatAsync([new UserChatMessage("Weather report for Paris as JSON")], options, Ct);
        Assert.Equal("Paris", JsonDocument.Parse(completion.Content[0].Text).RootElement.GetProperty("city").GetString());

        var raw = fx.Fake.ChatRequests[^1].Body;
        var body = JsonNode.Parse(raw)!;
        Assert.True(body["response_format"] is not null || body["output_config"] is not null, raw);
        if (model.StartsWith("openai/", StringComparison.Ordinal))
        {
            var format = body["response_format"]!;
            Assert.Equal("json_schema", format["type"]!.GetValue<string>());
            Assert.Equal("weather_report", format["json_schema"]!["name"]!.GetValue<string>());
            Assert.True(format["json_schema"]!["strict"]?.GetValue<bool>(), raw);
            Assert.Equal("string", format["json_schema"]!["schema"]!["properties"]!["city"]!["type"]!.GetValue<string>());
        }
        else
        {
            var format = body["output_config"]!["format"]!;
            Assert.Equal("json_schema", format["type"]!.GetValue<string>());
            Assert.Equal("string", format["schema"]!["properties"]!["city"]!["type"]!.GetValue<string>());
        }
    }

    [Fact]
    public async Task SamplingParametersAndTheEndUserReachAnOpenAiShapedProvider()
    {
        var (sdk, _) = await ClientsAsync();
        var options = new ChatCompletionOptions
        {
            StopSequences = { "END" },
            TopP = 0.5f,
            FrequencyPenalty = 0.25f,
            PresencePenalty = 0.75f,
            EndUserId = "end-user-42",
        };
#pragma warning disable OPENAI001 // Seed is marked experimental in the SDK.
        options.Seed = 1234;
#pragma warning restore OPENAI001
        fx.Fake.Enqueue(FakeScenario.Answer("ok"));
        await sdk.GetChatClient("openai/gpt-4o-mini").CompleteChatAsync([new UserChatMessage("hi")], options, Ct);
        var body = JsonNode.Parse(fx.Fake.ChatRequests[^1].Body)!;
        Assert.Equal("END", body["stop"]![0]!.GetValue<string>());
        Assert.Equal(0.5, body["top_p"]!.GetValue<double>(), 3);
        Assert.Equal(0.25, body["frequency_penalty"]!.GetValue<double>(), 3);
        Assert.Equal(0.75, body["presence_penalty"]!.GetValue<double>(), 3);
        Assert.Equal(1234, body["seed"]!.GetValue<long>());
        Assert.Equal("end-user-42", body["user"]!.GetValue<string>());
    }

    [Fact]
    public async Task ImagePartsArePassedToTheProviderAsUrlsAndRefusedByTheDemoModel()
    {
        var (sdk, http) = await ClientsAsync();
        var image = new Uri("https://images.example.invalid/cat.png");
        ChatMessage message = new UserChatMessage(ChatMessageContentPart.CreateTextPart("What is this?"), ChatMessageContentPart.CreateImagePart(image));

        fx.Fake.Enqueue(FakeScenario.Answer("A cat."));
        await sdk.GetChatClient("openai/gpt-4o-mini").CompleteChatAsync([message], cancellationToken: Ct);
        var openAi = JsonNode.Parse(fx.Fake.ChatRequests[^1].Body)!["messages"]![0]!["content"]!.AsArray();
        Assert.Contains(openAi, p => p!["type"]!.GetValue<string>() == "image_url" && p["image_url"]!["url"]!.GetValue<string>() == image.ToString());

        fx.Fake.Enqueue(FakeScenario.Answer("A cat."));
        await sdk.GetChatClient("anthropic/claude-haiku-4-5").CompleteChatAsync([message], cancellationToken: Ct);
        var anthropic = JsonNode.Parse(fx.Fake.ChatRequests[^1].Body)!["messages"]![0]!["content"]!.AsArray();
        Assert.Contains(anthropic, p => p!["type"]!.GetValue<string>() == "image" && p["source"]!["url"]!.GetValue<string>() == image.ToString());

        var pixel = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg==";
        fx.Fake.Enqueue(FakeScenario.Answer("A pixel."));
        await sdk.GetChatClient("openai/gpt-4o-mini").CompleteChatAsync(
            [new UserChatMessage(ChatMessageContentPart.CreateImagePart(BinaryData.FromBytes(Convert.FromBase64String(pixel[(pixel.IndexOf(',') + 1)..])), "image/png"))], cancellationToken: Ct);
        Assert.Contains(pixel[(pixel.IndexOf(',') + 1)..], fx.Fake.ChatRequests[^1].Body);

        var refused = await PostAsync(http, new JsonObject
        {
            ["model"] = "demo/echo",
            ["messages"] = new JsonArray(new JsonObject
            {
                ["role"] = "user",
                ["content"] = new JsonArray(new JsonObject { ["type"] = "text", ["text"] = "x" }, new JsonObject { ["type"] = "image_url", ["image_url"] = new JsonObject { ["url"] = image.ToString() } }),
            }),
        });
        Assert.Equal(400, refused.Status);
        Assert.Equal("messages[0].content[1]", refused.Param);
    }

    [Theory]
    [InlineData("openai/gpt-4o-mini", "\"frobnicate\":true", "frobnicate")]
    [InlineData("openai/gpt-4o-mini", "\"logprobs\":true", "logprobs")]
    [InlineData("openai/gpt-4o-mini", "\"n\":2", "n")]
    [InlineData("openai/gpt-4o-mini", "\"tools\":[{\"type\":\"code_interpreter\"}]", "tools[0].type")]
    [InlineData("openai/gpt-4o-mini", "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"nope\"}}", "tool_choice")]
    [InlineData("openai/gpt-4o-mini", "\"response_format\":{\"type\":\"yaml\"}", "response_format.type")]
    [InlineData("openai/gpt-4o-mini", "\"stop\":[1]", "stop")]
    [InlineData("anthropic/claude-haiku-4-5", "\"seed\":1", "seed")]
    [InlineData("anthropic/claude-haiku-4-5", "\"frequency_penalty\":0.5", "frequency_penalty")]
    [InlineData("anthropic/claude-haiku-4-5", "\"user\":\"u1\"", "user")]
    [InlineData("demo/echo", "\"response_format\":{\"type\":\"json_object\"}", "response_format")]
    [InlineData("demo/echo", "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],\"tool_choice\":\"required\"", "tool_choice")]
    public async Task ParametersTheServiceCannotHonourGetOpenAis400NamingThem(string model, string extra, string param)
    {
        var (_, http) = await ClientsAsync();
        var before = fx.Fake.ChatRequests.Count;
        var json = $$"""{"model":"{{model}}","messages":[{"role":"user","content":"hi"}],{{extra}}}""";
        var r = await http.PostAsync("v1/chat/completions", new StringContent(json, Encoding.UTF8, "application/json"), Ct);
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        var error = (await r.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("error");
        Assert.Equal(param, error.GetProperty("param").GetString());
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Equal(before, fx.Fake.ChatRequests.Count);
    }

    /// <summary>
    /// The request body as parsed whole (a declared length up to 64 KiB, in one block of the request's
    /// buffer or several) and as read from the stream (longer, or chunked without a length): the same
    /// answers, a UTF-8 byte order mark skipped, the same 400s for a body that is not a request.
    /// </summary>
    [Theory]
    [InlineData(10, false)]
    [InlineData(20_000, false)]
    [InlineData(70_000, false)]
    [InlineData(10, true)]
    [InlineData(20_000, true)]
    public async Task TheBodyIsReadTheSameWhateverItsLengthOrFraming(int promptChars, bool chunked)
    {
        var (_, http) = await ClientsAsync();
        var prompt = new string('a', promptChars - 1) + "z";
        foreach (var bom in new[] { false, true })
        {
            var before = fx.Fake.ChatRequests.Count;
            var json = $$"""{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"{{prompt}}"}]}""";
            var r = await http.PostAsync("v1/chat/completions", Body(json, bom, chunked), Ct);
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            Assert.Equal("chat.completion", (await r.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("object").GetString());
            var sent = JsonNode.Parse(fx.Fake.ChatRequests[before].Body)!;
            Assert.Equal(prompt, sent["messages"]![0]!["content"]!.GetValue<string>());
        }
        // The param names where the JSON went wrong (empty at its root).
        foreach (var (json, code, param) in new (string, string, string?)[]
        {
            ("""{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"hi"}]""", "invalid_json", ""),
            ("""{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"hi"}]} x""", "invalid_json", ""),
            ("""{"model":"openai/gpt-4o-mini","messages":3}""", "invalid_json", "messages"),
            ("null", "invalid_request", null),
        })
        {
            var r = await http.PostAsync("v1/chat/completions", Body(json, false, chunked), Ct);
            Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
            var error = (await r.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("error");
            Assert.Equal(code, error.GetProperty("code").GetString());
            Assert.Equal(param, error.TryGetProperty("param", out var p) ? p.GetString() : null);
        }

        static HttpContent Body(string json, bool bom, bool chunked)
        {
            var bytes = (bom ? "\uFEFF"u8.ToArray() : []).Concat(Encoding.UTF8.GetBytes(json)).ToArray();
            HttpContent content = chunked ? new UnsizedContent(bytes) : new ByteArrayContent(bytes);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            return content;
        }
    }

    /// <summary>A body sent without a length (chunked).</summary>
    private sealed class UnsizedContent(byte[] bytes) : HttpContent
    {
        protected override Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context) => stream.WriteAsync(bytes).AsTask();

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }

    private async Task<(int Status, string? Param)> PostAsync(HttpClient http, JsonObject body)
    {
        var r = await http.PostAsync("v1/chat/completions", new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"), Ct);
        var json = await r.Content.ReadFromJsonAsync<JsonElement>(Ct);
        return ((int)r.StatusCode, json.TryGetProperty("error", out var e) ? e.GetProperty("param").GetString() : null);
    }
}
