using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Jackcwf.Api.RobustnessTests.Infrastructure;

namespace Jackcwf.Api.RobustnessTests;

/// <summary>
/// Each kind of bad request gets the right 4xx <c>application/problem+json</c> (never a 500), naming the
/// field where one is at fault, and leaves every user's data exactly as it was.
/// </summary>
public sealed class BadInputTests(BadInputService service) : IClassFixture<BadInputService>
{
    private sealed record Case(int Status, string? Field, Func<BadInputService, Task<HttpResponseMessage>> Send);

    private static HttpContent Json(string json) => new StringContent(json, Encoding.UTF8, "application/json");

    private static HttpContent Raw(byte[] bytes, string? contentType)
    {
        var content = new ByteArrayContent(bytes);
        if (contentType is not null)
        {
            content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        }
        return content;
    }

    private static string Messages(BadInputService s) => $"api/conversations/{s.AliceConversation}/messages";

    private static Task<HttpResponseMessage> PostMessage(BadInputService s, HttpContent body, Action<HttpRequestMessage>? headers = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, Messages(s)) { Content = body };
        headers?.Invoke(request);
        return s.Alice.Client.SendAsync(request);
    }

    private static Task<HttpResponseMessage> Send(HttpClient client, HttpMethod method, string url, HttpContent? body = null, string? bearer = null)
    {
        var request = new HttpRequestMessage(method, url) { Content = body };
        if (bearer is not null)
        {
            request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + bearer);
        }
        return client.SendAsync(request);
    }

    private static readonly Dictionary<string, Case> Cases = new()
    {
        // POST /api/conversations/{id}/messages
        ["message: malformed JSON"] = new(400, null, s => PostMessage(s, Json("{\"content\":"))),
        ["message: content is a number"] = new(400, "content", s => PostMessage(s, Json("{\"content\":5}"))),
        ["message: parentMessageId is a number"] = new(400, "parentMessageId", s => PostMessage(s, Json("{\"content\":\"x\",\"parentMessageId\":12}"))),
        ["message: model is an array"] = new(400, "model", s => PostMessage(s, Json("{\"content\":\"x\",\"model\":[]}"))),
        ["message: content missing"] = new(400, "content", s => PostMessage(s, Json("{}"))),
        ["message: content blank"] = new(400, "content", s => PostMessage(s, Json("{\"content\":\"  \\n\\t \"}"))),
        ["message: content over MAX_MESSAGE_CHARS"] = new(400, "content",
            s => PostMessage(s, JsonContent.Create(new { content = new string('a', BadInputService.MaxMessageChars + 1) }))),
        ["message: body over 1 MiB"] = new(413, null,
            s => PostMessage(s, JsonContent.Create(new { content = new string('a', 1024 * 1024 + 10) }))),
        ["message: unknown model"] = new(400, "model", s => PostMessage(s, Json("{\"content\":\"x\",\"model\":\"nobody/nothing\"}"))),
        ["message: parentMessageId not in the conversation"] = new(400, "parentMessageId",
            s => PostMessage(s, Json($"{{\"content\":\"x\",\"parentMessageId\":\"{Guid.CreateVersion7()}\"}}"))),
        ["message: parentMessageId from another user's conversation"] = new(400, "parentMessageId",
            s => PostMessage(s, Json($"{{\"content\":\"x\",\"parentMessageId\":\"{s.BobUserMessage}\"}}"))),
        ["message: body is a JSON array"] = new(400, null, s => PostMessage(s, Json("[{\"content\":\"x\"}]"))),
        ["message: body nested too deep"] = new(400, null,
            s => PostMessage(s, Json("{\"content\":\"x\",\"model\":" + new string('[', 200) + new string(']', 200) + "}"))),
        ["message: invalid UTF-8"] = new(400, null,
            s => PostMessage(s, Raw([.. "{\"content\":\""u8, 0xC3, 0x28, 0xFF, .. "\"}"u8], "application/json"))),
        // Chat clients send Accept: text/event-stream; their errors must still be problem+json.
        ["message: malformed JSON from an event-stream client"] = new(400, null,
            s => PostMessage(s, Json("{\"content\":"), r => r.Headers.Accept.ParseAdd("text/event-stream"))),
        ["message: content is a number from an event-stream client"] = new(400, "content",
            s => PostMessage(s, Json("{\"content\":5}"), r => r.Headers.Accept.ParseAdd("text/event-stream"))),
        ["message: Content-Type text/plain"] = new(415, null, s => PostMessage(s, Raw("{\"content\":\"x\"}"u8.ToArray(), "text/plain"))),
        ["message: no Content-Type"] = new(415, null, s => PostMessage(s, Raw("{\"content\":\"x\"}"u8.ToArray(), null))),
        ["message: form-encoded body"] = new(415, null,
            s => PostMessage(s, new FormUrlEncodedContent([new KeyValuePair<string, string>("content", "x")]))),
        ["message: Idempotency-Key over 200 characters"] = new(400, "Idempotency-Key",
            s => PostMessage(s, Json("{\"content\":\"x\"}"), r => r.Headers.Add("Idempotency-Key", new string('k', 201)))),
        ["message: Idempotency-Key with control characters"] = new(400, "Idempotency-Key",
            s => PostMessage(s, Json("{\"content\":\"x\"}"), r => r.Headers.TryAddWithoutValidation("Idempotency-Key", "key\u0001\u0007"))),

        // Ids in routes that are not UUIDs
        ["route: non-UUID conversation id"] = new(404, null, s => s.Alice.Client.GetAsync("api/conversations/not-a-uuid")),
        ["route: non-UUID conversation id on messages"] = new(404, null,
            s => s.Alice.Client.PostAsync("api/conversations/12345/messages", Json("{\"content\":\"x\"}"))),
        ["route: non-UUID message id on events"] = new(404, null,
            s => s.Alice.Client.GetAsync($"api/conversations/{s.AliceConversation}/messages/xyz/events")),
        ["route: non-UUID message id on stop"] = new(404, null,
            s => s.Alice.Client.PostAsync($"api/conversations/{s.AliceConversation}/messages/xyz/stop", null)),
        ["route: non-UUID id on delete"] = new(404, null, s => s.Alice.Client.DeleteAsync("api/conversations/00000000-0000")),

        // Another user's ids answer as if they did not exist
        ["owner: get other user's conversation"] = new(404, null, s => s.Alice.Client.GetAsync($"api/conversations/{s.BobConversation}")),
        ["owner: rename other user's conversation"] = new(404, null,
            s => s.Alice.Client.PatchAsync($"api/conversations/{s.BobConversation}", Json("{\"title\":\"mine now\"}"))),
        ["owner: delete other user's conversation"] = new(404, null, s => s.Alice.Client.DeleteAsync($"api/conversations/{s.BobConversation}")),
        ["owner: export other user's conversation"] = new(404, null,
            s => s.Alice.Client.GetAsync($"api/conversations/{s.BobConversation}/export?format=markdown")),
        ["owner: post into other user's conversation"] = new(404, null,
            s => s.Alice.Client.PostAsync($"api/conversations/{s.BobConversation}/messages", Json("{\"content\":\"x\"}"))),
        ["owner: resume other user's answer"] = new(404, null,
            s => s.Alice.Client.GetAsync($"api/conversations/{s.BobConversation}/messages/{s.BobAssistantMessage}/events")),
        ["owner: resume other user's answer under own conversation"] = new(404, null,
            s => s.Alice.Client.GetAsync($"api/conversations/{s.AliceConversation}/messages/{s.BobAssistantMessage}/events")),
        ["owner: stop other user's answer"] = new(404, null,
            s => s.Alice.Client.PostAsync($"api/conversations/{s.BobConversation}/messages/{s.BobAssistantMessage}/stop", null)),

        // Authentication
        ["auth: no token on list"] = new(401, null, s => s.Anonymous().GetAsync("api/conversations")),
        ["auth: no token on send"] = new(401, null, s => Send(s.Anonymous(), HttpMethod.Post, Messages(s), Json("{\"content\":\"x\"}"))),
        ["auth: no token from an event-stream client"] = new(401, null, s =>
        {
            var request = new HttpRequestMessage(HttpMethod.Post, Messages(s)) { Content = Json("{\"content\":\"x\"}") };
            request.Headers.Accept.ParseAdd("text/event-stream");
            return s.Anonymous().SendAsync(request);
        }),
        ["auth: garbage token"] = new(401, null, s => Send(s.Anonymous(), HttpMethod.Get, "api/me", bearer: "garbage")),
        ["auth: token of another service instance"] = new(401, null,
            s => Send(s.Anonymous(), HttpMethod.Post, "api/conversations", Json("{}"), s.ForeignToken)),
        ["auth: tampered token"] = new(401, null,
            s => Send(s.Anonymous(), HttpMethod.Get, "api/conversations", bearer: Tamper(s.Alice.AccessToken))),
        ["auth: refresh token used as access token"] = new(401, null,
            s => Send(s.Anonymous(), HttpMethod.Get, "api/conversations", bearer: s.Alice.RefreshToken)),
        ["auth: refresh with a garbage refresh token"] = new(401, null,
            s => s.Anonymous().PostAsync("api/auth/refresh", Json("{\"refreshToken\":\"garbage\"}"))),
        ["auth: cookie session without X-Requested-With"] = new(403, null, async s =>
        {
            var cookies = await s.CookieClientAsync(s.Alice);
            return await cookies.PostAsync(Messages(s), Json("{\"content\":\"x\"}"));
        }),

        // Conversations
        ["conversation: title is a number"] = new(400, "title", s => s.Alice.Client.PostAsync("api/conversations", Json("{\"title\":5}"))),
        ["conversation: unknown model"] = new(400, "model", s => s.Alice.Client.PostAsync("api/conversations", Json("{\"model\":\"x/y\"}"))),
        ["conversation: title too long"] = new(400, "title",
            s => s.Alice.Client.PostAsJsonAsync("api/conversations", new { title = new string('t', 201) })),
        ["conversation: system prompt too long"] = new(400, "systemPrompt",
            s => s.Alice.Client.PostAsJsonAsync("api/conversations", new { systemPrompt = new string('p', 20_001) })),
        ["conversation: create with text/plain"] = new(415, null,
            s => s.Alice.Client.PostAsync("api/conversations", Raw("{}"u8.ToArray(), "text/plain"))),
        ["conversation: rename with null body"] = new(400, null,
            s => s.Alice.Client.PatchAsync($"api/conversations/{s.AliceConversation}", Json("null"))),
        ["conversation: rename to unknown model"] = new(400, "model",
            s => s.Alice.Client.PatchAsync($"api/conversations/{s.AliceConversation}", Json("{\"model\":\"x/y\"}"))),
        ["conversation: export as pdf"] = new(400, "format",
            s => s.Alice.Client.GetAsync($"api/conversations/{s.AliceConversation}/export?format=pdf")),

        // API keys
        ["keys: name is a number"] = new(400, "name", s => s.Alice.Client.PostAsync("api/keys", Json("{\"name\":5}"))),
        ["keys: name missing"] = new(400, "name", s => s.Alice.Client.PostAsync("api/keys", Json("{}"))),
        ["keys: name too long"] = new(400, "name", s => s.Alice.Client.PostAsJsonAsync("api/keys", new { name = new string('n', 101) })),
        ["keys: revoke a non-UUID id"] = new(404, null, s => s.Alice.Client.DeleteAsync("api/keys/not-a-uuid")),
        ["keys: revoke an unknown key"] = new(404, null, s => s.Alice.Client.DeleteAsync($"api/keys/{Guid.CreateVersion7()}")),
        ["auth: garbage API key"] = new(401, null, s => Send(s.Anonymous(), HttpMethod.Get, "api/conversations", bearer: "jk-" + new string('x', 43))),

        // Listing
        ["list: limit=0"] = new(400, "limit", s => s.Alice.Client.GetAsync("api/conversations?limit=0")),
        ["list: limit=1000"] = new(400, "limit", s => s.Alice.Client.GetAsync("api/conversations?limit=1000")),
        ["list: limit=abc"] = new(400, null, s => s.Alice.Client.GetAsync("api/conversations?limit=abc")),
        ["list: garbage cursor"] = new(400, "cursor", s => s.Alice.Client.GetAsync("api/conversations?cursor=%21%21not-a-cursor")),
        ["list: base64 cursor of garbage"] = new(400, "cursor", s => s.Alice.Client.GetAsync("api/conversations?cursor=aGVsbG8")),
        ["list: search over 500 characters"] = new(400, "q", s => s.Alice.Client.GetAsync("api/conversations?q=" + new string('q', 501))),

        // Resume and stop
        ["resume: Last-Event-ID not a number"] = new(400, "Last-Event-ID", s => Resume(s, "abc")),
        ["resume: Last-Event-ID negative"] = new(400, "Last-Event-ID", s => Resume(s, "-5")),
        ["resume: Last-Event-ID beyond int"] = new(400, "Last-Event-ID", s => Resume(s, "99999999999999")),
        ["stop: finished answer"] = new(409, null,
            s => s.Alice.Client.PostAsync($"api/conversations/{s.AliceConversation}/messages/{s.AliceAssistantMessage}/stop", null)),

        // Accounts
        ["register: weak password"] = new(400, null,
            s => s.Anonymous().PostAsJsonAsync("api/auth/register", new { email = $"{Guid.NewGuid():N}@example.test", password = "short" })),
        ["register: email already taken"] = new(400, null,
            s => s.Anonymous().PostAsJsonAsync("api/auth/register", new { email = s.Alice.Email, password = "An0ther-Passw0rd" })),
        ["register: malformed JSON"] = new(400, null, s => s.Anonymous().PostAsync("api/auth/register", Json("{\"email\":"))),
        ["login: wrong password"] = new(401, null,
            s => s.Anonymous().PostAsJsonAsync("api/auth/login", new { email = s.Bob.Email, password = "Wr0ng-password" })),
        ["login: password is a number"] = new(400, "password",
            s => s.Anonymous().PostAsync("api/auth/login", Json($"{{\"email\":\"{s.Bob.Email}\",\"password\":5}}"))),
    };

    private static Task<HttpResponseMessage> Resume(BadInputService s, string lastEventId)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, $"api/conversations/{s.AliceConversation}/messages/{s.AliceAssistantMessage}/events");
        request.Headers.TryAddWithoutValidation("Last-Event-ID", lastEventId);
        return s.Alice.Client.SendAsync(request);
    }

    private static string Tamper(string token)
    {
        var chars = token.ToCharArray();
        var i = chars.Length / 2;
        chars[i] = chars[i] == 'A' ? 'B' : 'A';
        return new string(chars);
    }

    public static TheoryData<string> CaseNames => new(Cases.Keys);

    [Theory]
    [MemberData(nameof(CaseNames))]
    public async Task Bad_request_gets_a_4xx_problem_and_changes_no_data(string name)
    {
        var c = Cases[name];
        var aliceBefore = await service.Alice.SnapshotAsync();
        var bobBefore = await service.Bob.SnapshotAsync();

        using var response = await c.Send(service);
        await ProblemAssert.IsProblemAsync(response, c.Status, c.Field, name);

        Assert.Equal(aliceBefore, await service.Alice.SnapshotAsync());
        Assert.Equal(bobBefore, await service.Bob.SnapshotAsync());
    }

    /// <summary>
    /// Every optional query value of a parsed type (integer, number, boolean, uuid, date-time) on every GET
    /// route the OpenAPI document lists: a value that does not parse gets the 400 problem naming it, as a
    /// required one does (a route added later is covered without a case of its own).
    /// </summary>
    [Fact]
    public async Task Every_optional_typed_query_value_that_does_not_parse_gets_a_problem_naming_it()
    {
        using var http = service.Api.CreateClient();
        var document = JsonNode.Parse(await http.GetStringAsync("openapi/v1.json"))!;
        var probed = new List<string>();
        foreach (var (path, item) in document["paths"]!.AsObject())
        {
            if (item?["get"]?["parameters"] is not JsonArray parameters)
            {
                continue;
            }
            var url = Regex.Replace(path.TrimStart('/'), "\\{[^}]+\\}", _ => Guid.NewGuid().ToString());
            foreach (var parameter in parameters)
            {
                if ((string?)parameter?["in"] != "query" || parameter?["required"]?.GetValue<bool>() == true)
                {
                    continue;
                }
                var name = (string)parameter!["name"]!;
                var schema = parameter["schema"];
                var types = schema?["type"] switch
                {
                    JsonArray many => many.Select(t => (string?)t).ToList(),
                    JsonValue one => [(string?)one],
                    _ => [],
                };
                var format = (string?)schema?["format"];
                var bad = types.Contains("integer") || types.Contains("number") ? "twelve"
                    : types.Contains("boolean") ? "maybe"
                    : format == "uuid" ? "not-a-uuid"
                    : format == "date-time" ? "not-a-date"
                    : null;
                if (bad is null)
                {
                    continue;
                }
                // Alice is the first account, the administrator: the administration routes answer her too.
                using var response = await service.Alice.Client.GetAsync($"{url}?{name}={bad}");
                await ProblemAssert.IsProblemAsync(response, 400, name, $"GET {path}?{name}={bad}");
                probed.Add($"{path}?{name}");
            }
        }
        Assert.True(probed.Count >= 4, "typed optional query values probed: " + string.Join(", ", probed));
    }

    [Fact]
    public async Task Wrong_types_name_the_field_without_internal_type_names()
    {
        using var response = await service.Alice.Client.PostAsync(Messages(service), Json("{\"content\":5}"));
        var problem = await ProblemAssert.IsProblemAsync(response, 400, "content");
        var text = problem.GetRawText();
        Assert.DoesNotContain("Jackcwf.", text, StringComparison.Ordinal);
        Assert.DoesNotContain("System.", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task No_bad_request_was_logged_as_an_error()
    {
        foreach (var name in Cases.Keys)
        {
            using var _ = await Cases[name].Send(service);
        }
        var bad = LogAssert.ErrorLines(service.Api);
        Assert.True(bad.Count == 0, "error log lines:\n" + string.Join('\n', bad));
    }
}
