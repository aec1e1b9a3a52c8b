using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Jackcwf.Api.RobustnessTests.Infrastructure;

namespace Jackcwf.Api.RobustnessTests;

/// <summary>
/// Generated malformed requests against every route and method of the OpenAPI document, anonymous and
/// signed in: wrong types, huge strings, invalid UTF-8, deep JSON, missing and wrong bodies, bad headers
/// and query values. None may produce a 5xx, and the service must log no error or unhandled exception.
/// </summary>
public sealed class MalformedRequestTests(ITestOutputHelper output)
{
    private const int HugeLength = 100 * 1024;
    private static readonly string Huge = new('x', HugeLength);

    internal sealed record Route(string Method, string Template, IReadOnlyList<string> BodyProperties, IReadOnlyList<string> QueryParameters, bool HasBody);

    internal sealed record Probe(string Variant, HttpMethod Method, string Url, Func<HttpContent?> Body, IReadOnlyList<KeyValuePair<string, string>> Headers, bool ReplaceAuthorization = false);

    [Fact]
    public async Task Every_route_answers_malformed_requests_without_a_server_error()
    {
        await using var api = await Service.StartAsync(new Dictionary<string, string?> { ["DEMO_CHUNK_DELAY_MS"] = "0" });
        // The first account is the administrator; the administration routes are probed with its token too.
        using var admin = await TestUser.SignUpAsync(api);
        using var user = await TestUser.SignUpAsync(api);
        var conversation = await user.CreateConversationAsync("fuzz target");
        var (_, assistant) = await user.ChatAsync(conversation, "something to resume");
        // Only what the malformed requests cause is judged (start-up readiness polling is another test's concern).
        api.Log.Clear();

        using var http = api.CreateClient();
        var document = JsonNode.Parse(await http.GetStringAsync("openapi/v1.json"))!;
        var routes = Routes(document);
        Assert.True(routes.Count >= 15, $"the OpenAPI document lists only {routes.Count} operations");

        var probes = new List<(string Identity, Probe Probe)>();
        // Destructive methods last, so the other probes still meet an existing conversation.
        foreach (var route in routes.OrderBy(r => r.Method == "DELETE"))
        {
            foreach (var probe in ProbesFor(route, conversation, assistant))
            {
                probes.Add(("anonymous", probe));
                probes.Add(("signed-in", probe));
                if (route.Template.StartsWith("/api/admin", StringComparison.Ordinal))
                {
                    probes.Add(("administrator", probe));
                }
            }
        }

        var (failures, statuses) = await SendAllAsync(api, probes, admin.AccessToken, user.AccessToken);
        var summary = $"{probes.Count} malformed requests to {routes.Count} operations; statuses: "
            + string.Join(", ", statuses.OrderBy(s => s.Key).Select(s => $"{s.Key}×{s.Value}"));
        output.WriteLine(summary);
        TestContext.Current.SendDiagnosticMessage(summary);

        Assert.True(api.Log.Lines.Count > 0, "the service logged nothing");
        var errors = LogAssert.ErrorLines(api);
        Assert.True(failures.IsEmpty && errors.Count == 0,
            $"{failures.Count} of {probes.Count} requests failed on the server:\n" + string.Join('\n', failures.Take(40))
            + $"\n{errors.Count} error log lines:\n" + string.Join('\n', errors.GroupBy(e => e).Select(g => $"{g.Count()}× {g.Key}").Take(30)));
        // The service is still healthy and serving.
        using var ready = await http.GetAsync("health/ready", TestContext.Current.CancellationToken);
        Assert.Equal(System.Net.HttpStatusCode.OK, ready.StatusCode);
    }

    /// <summary>Sends every probe (six at a time) and collects the 5xx answers and the status counts.</summary>
    internal static async Task<(ConcurrentBag<string> Failures, ConcurrentDictionary<int, int> Statuses)> SendAllAsync(
        ApiProcess api, IReadOnlyList<(string Identity, Probe Probe)> probes, string adminToken, string userToken)
    {
        // Raw bytes in headers (Latin-1) and no cookie jar, so every header is exactly what the probe says.
        // Large bodies go with "Expect: 100-continue", as well-behaved clients send them: a server that
        // refuses before reading (401 for an anonymous caller, 413) answers without receiving the
        // upload. Without it, the answer races the upload, and under load the server may close the
        // connection while the client is still sending, which the client sees as "no answer".
        using var handler = new SocketsHttpHandler
        {
            UseCookies = false,
            AllowAutoRedirect = false,
            RequestHeaderEncodingSelector = (_, _) => Encoding.Latin1,
            Expect100ContinueTimeout = TimeSpan.FromSeconds(60),
        };
        using var client = new HttpClient(handler) { BaseAddress = api.BaseUrl, Timeout = TimeSpan.FromSeconds(60) };

        var failures = new ConcurrentBag<string>();
        var statuses = new ConcurrentDictionary<int, int>();
        using var gate = new SemaphoreSlim(6);
        var tasks = probes.Select(async p =>
        {
            await gate.WaitAsync(TestContext.Current.CancellationToken);
            try
            {
                using var request = new HttpRequestMessage(p.Probe.Method, p.Probe.Url) { Content = p.Probe.Body() };
                if (request.Content?.Headers.ContentLength > 64 * 1024)
                {
                    request.Headers.ExpectContinue = true;
                }
                if (p.Identity != "anonymous" && !p.Probe.ReplaceAuthorization)
                {
                    request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", p.Identity == "administrator" ? adminToken : userToken);
                }
                foreach (var (name, value) in p.Probe.Headers)
                {
                    if (!request.Headers.TryAddWithoutValidation(name, value))
                    {
                        request.Content?.Headers.Remove(name);
                        request.Content?.Headers.TryAddWithoutValidation(name, value);
                    }
                }
                using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, TestContext.Current.CancellationToken);
                var status = (int)response.StatusCode;
                statuses.AddOrUpdate(status, 1, (_, n) => n + 1);
                if (status >= 500)
                {
                    var body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
                    failures.Add($"{status} for {p.Identity} {p.Probe.Method} {Short(p.Probe.Url)} [{p.Probe.Variant}]: {Short(body)}");
                }
            }
            catch (HttpRequestException e)
            {
                failures.Add($"no answer for {p.Identity} {p.Probe.Method} {Short(p.Probe.Url)} [{p.Probe.Variant}]: {e.Message}");
            }
            finally
            {
                gate.Release();
            }
        });
        await Task.WhenAll(tasks);

        return (failures, statuses);
    }

    internal static List<Route> Routes(JsonNode document)
    {
        var routes = new List<Route>();
        var schemas = document["components"]?["schemas"];
        foreach (var (path, item) in document["paths"]!.AsObject())
        {
            foreach (var (method, operation) in item!.AsObject())
            {
                if (method is "parameters" or "summary" or "description" || operation is not JsonObject op)
                {
                    continue;
                }
                var query = op["parameters"]?.AsArray().Where(p => (string?)p!["in"] == "query").Select(p => (string)p!["name"]!).ToList() ?? [];
                var schema = op["requestBody"]?["content"]?["application/json"]?["schema"];
                var properties = PropertiesOf(schema, schemas);
                routes.Add(new Route(method.ToUpperInvariant(), path, properties, query, op["requestBody"] is not null));
            }
        }
        return routes;
    }

    private static List<string> PropertiesOf(JsonNode? schema, JsonNode? schemas)
    {
        for (var depth = 0; schema is not null && depth < 5; depth++)
        {
            if (schema["$ref"] is JsonValue reference)
            {
                schema = schemas?[((string)reference!).Split('/')[^1]];
                continue;
            }
            if (schema["properties"] is JsonObject props)
            {
                return [.. props.Select(p => p.Key)];
            }
            schema = (schema["allOf"] ?? schema["oneOf"] ?? schema["anyOf"])?.AsArray().FirstOrDefault(s => s?["$ref"] is not null || s?["properties"] is not null);
        }
        return [];
    }

    internal static IEnumerable<Probe> ProbesFor(Route route, Guid conversation, Guid message)
    {
        var method = new HttpMethod(route.Method);
        string PathWith(string id, string messageId) => route.Template.Replace("{id}", id).Replace("{messageId}", messageId).TrimStart('/');
        var url = PathWith(conversation.ToString(), message.ToString());
        var wantsIds = route.Template.Contains('{');
        var props = route.BodyProperties.Count > 0 ? route.BodyProperties : ["content", "title", "email", "password"];
        KeyValuePair<string, string>[] none = [];
        static KeyValuePair<string, string> H(string name, string value) => new(name, value);
        static HttpContent JsonBody(string json) => new StringContent(json, Encoding.UTF8, "application/json");
        static HttpContent Bytes(byte[] bytes, string type = "application/json")
        {
            var c = new ByteArrayContent(bytes);
            c.Headers.ContentType = MediaTypeHeaderValue.Parse(type);
            return c;
        }

        // Path variants
        if (wantsIds)
        {
            yield return new("random ids", method, PathWith(Guid.NewGuid().ToString(), Guid.NewGuid().ToString()), () => JsonBody("{}"), none);
            yield return new("non-UUID ids", method, PathWith("not-a-uuid", "1"), () => JsonBody("{}"), none);
            yield return new("invalid UTF-8 ids", method, PathWith("%C3%28%FF", "%FE%FF"), () => JsonBody("{}"), none);
            yield return new("huge id", method, PathWith(new string('9', 4000), "x"), () => JsonBody("{}"), none);
        }

        // Bodies (sent to every method: a body where none is expected must not break anything either)
        var bodies = new List<(string, Func<HttpContent?>)>
        {
            ("no body", () => null),
            ("empty JSON body", () => Bytes([])),
            ("null", () => JsonBody("null")),
            ("array", () => JsonBody("[]")),
            ("array of objects", () => JsonBody("[{}, {}]")),
            ("string", () => JsonBody("\"hello\"")),
            ("number", () => JsonBody("42")),
            ("boolean", () => JsonBody("true")),
            ("truncated", () => JsonBody("{\"")),
            ("trailing garbage", () => JsonBody("{} {}")),
            ("comment", () => JsonBody("/* hi */ {}")),
            ("BOM", () => Bytes([0xEF, 0xBB, 0xBF, (byte)'{', (byte)'}'])),
            ("invalid UTF-8 bytes", () => Bytes([0xFF, 0xFE, 0xC3, 0x28])),
            ("invalid UTF-8 in a string", () => Bytes([.. Encoding.ASCII.GetBytes($"{{\"{props[0]}\":\""), 0xC3, 0x28, 0xED, 0xA0, 0x80, .. "\"}"u8])),
            ("lone surrogate escape", () => JsonBody($"{{\"{props[0]}\":\"\\uD800\"}}")),
            ("NUL in a string", () => JsonBody($"{{\"{props[0]}\":\"a\\u0000b\"}}")),
            ("deep arrays (10,000)", () => JsonBody(new string('[', 10_000) + new string(']', 10_000))),
            ("deep objects (10,000)", () => JsonBody(string.Concat(Enumerable.Repeat("{\"a\":", 10_000)) + "1" + new string('}', 10_000))),
            ("deep value (10,000)", () => JsonBody($"{{\"{props[0]}\":" + new string('[', 10_000) + new string(']', 10_000) + "}")),
            ("huge top-level string", () => JsonBody("\"" + Huge + "\"")),
            ("every property huge", () => JsonBody("{" + string.Join(',', props.Select(p => $"\"{p}\":\"{Huge}\"")) + "}")),
            ("duplicate properties", () => JsonBody($"{{\"{props[0]}\":\"a\",\"{props[0]}\":5}}")),
            ("unknown property", () => JsonBody("{\"unexpected\":{\"nested\":[1,2,3]}}")),
            ("huge number", () => JsonBody($"{{\"{props[0]}\":1e999999}}")),
            ("form body", () => new FormUrlEncodedContent([new KeyValuePair<string, string>(props[0], "x")])),
            ("text/plain body", () => Bytes("{}"u8.ToArray(), "text/plain")),
            ("multipart without parts", () => Bytes("--x--"u8.ToArray(), "multipart/form-data; boundary=x")),
            ("JSON declared as UTF-16", () => Bytes("{}"u8.ToArray(), "application/json; charset=utf-16")),
            ("JSON with unknown charset", () => Bytes("{}"u8.ToArray(), "application/json; charset=klingon")),
        };
        foreach (var p in props)
        {
            foreach (var (label, value) in new[]
            {
                ("number", "5"), ("negative number", "-1"), ("float", "1.5e300"), ("boolean", "false"), ("array", "[\"a\"]"),
                ("object", "{\"a\":1}"), ("null", "null"), ("huge string", $"\"{Huge}\""), ("empty string", "\"\""),
                ("UUID-like garbage", "\"00000000-0000-0000-0000-00000000000g\""), ("control characters", "\"\\u0001\\u0007\\u001b\""),
            })
            {
                bodies.Add(($"{p} is {label}", () => JsonBody($"{{\"{p}\":{value}}}")));
            }
        }
        foreach (var (label, body) in bodies)
        {
            yield return new(label, method, url, body, none);
        }

        // Headers
        var headers = new (string, KeyValuePair<string, string>[], bool)[]
        {
            ("huge Authorization (100 KB)", [H("Authorization", "Bearer " + Huge)], true),
            ("Authorization just under the header limit", [H("Authorization", "Bearer " + new string('y', 60_000))], true),
            ("Authorization scheme without token", [H("Authorization", "Bearer")], true),
            ("Authorization Basic garbage", [H("Authorization", "Basic !!!not-base64")], true),
            ("Authorization with spaces", [H("Authorization", "Bearer a b c")], true),
            ("Authorization with Latin-1 bytes", [H("Authorization", "Bearer \u00ff\u00fe\u00e9")], true),
            ("Accept garbage", [H("Accept", "??/??")], false),
            ("Accept event stream with bad q", [H("Accept", "text/event-stream;q=abc, */*;q=-1")], false),
            ("Accept huge", [H("Accept", string.Join(',', Enumerable.Repeat("text/event-stream", 2000)))], false),
            ("Idempotency-Key control characters", [H("Idempotency-Key", "k\u0001\u0002\u007f")], false),
            ("Idempotency-Key Latin-1 bytes", [H("Idempotency-Key", "\u00ff\u00fe")], false),
            ("Idempotency-Key huge", [H("Idempotency-Key", new string('k', 10_000))], false),
            ("Idempotency-Key twice", [H("Idempotency-Key", "a"), H("Idempotency-Key", "b")], false),
            ("Last-Event-ID garbage", [H("Last-Event-ID", "\u0001-1e9")], false),
            ("Last-Event-ID huge number", [H("Last-Event-ID", new string('9', 500))], false),
            ("Content-Type garbage", [H("Content-Type", "application/json; ;;; charset=")], false),
            ("session cookie garbage", [H("Cookie", "jackcwf.session=garbage%%%; other=\u00ff"), H("X-Requested-With", "XMLHttpRequest")], false),
            ("forwarded headers garbage", [H("X-Forwarded-For", "not-an-ip, ::::1, 999.1.1.1"), H("X-Forwarded-Proto", "gopher"), H("X-Forwarded-Host", "\u00ff")], false),
            ("traceparent garbage", [H("traceparent", "00-zzzz-yyyy-01"), H("baggage", "=;=;=")], false),
            ("Range and If headers garbage", [H("Range", "bytes=99999999999999-1"), H("If-None-Match", "\"\u0001\""), H("If-Modified-Since", "yesterday")], false),
        };
        foreach (var (label, hs, replacesAuth) in headers)
        {
            yield return new(label, method, url, () => JsonBody("{\"content\":\"hi\",\"title\":\"t\"}"), hs, replacesAuth);
        }

        // Query strings
        var queryNames = route.QueryParameters.Concat(["limit", "cursor", "format", "useCookies"]).Distinct().ToList();
        foreach (var q in queryNames)
        {
            foreach (var (label, value) in new[]
            {
                ("empty", ""), ("negative", "-1"), ("overflowing", "99999999999999999999999"), ("NUL", "%00"),
                ("invalid UTF-8", "%C3%28%FF"), ("4 KB", new string('q', 4096)), ("array syntax", "a&" + q + "=b"),
            })
            {
                yield return new($"query {q} {label}", method, $"{url}?{q}={value}", () => JsonBody("{}"), none);
            }
        }
        yield return new("query string 100 KB", method, $"{url}?q={Huge}", () => JsonBody("{}"), none);
    }

    private static string Short(string s) => s.Length <= 300 ? s : s[..300] + "…";
}
