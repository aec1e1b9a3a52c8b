using System.Net;
using System.Net.Http.Json;
using System.Text;
using Jackcwf.Api.RobustnessTests.Infrastructure;
using Npgsql;

namespace Jackcwf.Api.RobustnessTests;

/// <summary>
/// Canary secrets (provider keys, a user's password, the database password) are used for real and
/// then searched for in every captured log line, response body and header, and the metrics text.
/// </summary>
public sealed class SecretTests
{
    /// <summary>Every response these tests saw: status line, headers and body.</summary>
    private sealed class Recorder
    {
        private readonly List<string> _responses = [];

        public async Task<HttpResponseMessage> RecordAsync(Task<HttpResponseMessage> pending)
        {
            var response = await pending;
            var sb = new StringBuilder();
            sb.Append((int)response.StatusCode).Append(' ').Append(response.RequestMessage?.RequestUri).AppendLine();
            foreach (var (name, values) in response.Headers.Concat(response.Content.Headers))
            {
                sb.Append(name).Append(": ").AppendJoin(", ", values).AppendLine();
            }
            sb.AppendLine(await response.Content.ReadAsStringAsync());
            lock (_responses)
            {
                _responses.Add(sb.ToString());
            }
            return response;
        }

        public int Count => _responses.Count;

        public void AssertNoneContains(string secret, string what)
        {
            lock (_responses)
            {
                var hit = _responses.FirstOrDefault(r => r.Contains(secret, StringComparison.Ordinal));
                Assert.True(hit is null, $"the {what} appears in a response:\n{hit}");
            }
        }
    }

    private static void AssertLogsClean(ApiProcess api, string secret, string what)
    {
        var hit = api.LogLines.FirstOrDefault(l => l.Contains(secret, StringComparison.Ordinal));
        Assert.True(hit is null, $"the {what} appears in the service's output:\n{hit}");
    }

    [Fact]
    public async Task Provider_keys_and_user_passwords_never_appear_in_logs_responses_or_metrics()
    {
        var openAiKey = $"sk-canary-{Guid.NewGuid():N}";
        var anthropicKey = $"sk-ant-canary-{Guid.NewGuid():N}";
        var password = $"Canary-Pw-{Guid.NewGuid():N}-A1";
        await using var fake = await FakeLlmServer.StartAsync(TestContext.Current.CancellationToken);
        await using var api = await Service.StartAsync(new Dictionary<string, string?>
        {
            ["OPENAI_API_KEY"] = openAiKey,
            ["OPENAI_BASE_URL"] = fake.OpenAiBaseUrl.ToString(),
            ["ANTHROPIC_API_KEY"] = anthropicKey,
            ["ANTHROPIC_BASE_URL"] = fake.AnthropicBaseUrl.ToString(),
            ["ENABLE_MONITORING"] = "true",
            ["MONITORING_INTERVAL_SECONDS"] = "1",
            ["LOG_LEVEL"] = "Debug",
        });
        var r = new Recorder();
        using var anonymous = api.CreateClient();

        // Accounts: register, log in with the right and the wrong password, by token and by cookie.
        var email = $"canary-{Guid.NewGuid():N}@example.test";
        using (await r.RecordAsync(anonymous.PostAsJsonAsync("api/auth/register", new { email, password = "weak" }))) { }
        using var user = await TestUser.SignUpAsync(api, email, password);
        using (var wrong = await r.RecordAsync(anonymous.PostAsJsonAsync("api/auth/login", new { email, password = password + "x" })))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        }
        using (await r.RecordAsync(anonymous.PostAsJsonAsync("api/auth/login", new { email, password }))) { }
        using (var cookies = api.CreateClient())
        {
            using (await r.RecordAsync(cookies.PostAsJsonAsync("api/auth/login?useCookies=true", new { email, password }))) { }
            using (await r.RecordAsync(cookies.GetAsync("api/me"))) { }
        }
        using (await r.RecordAsync(anonymous.PostAsJsonAsync("api/auth/register", new { email, password }))) { }

        // Chat through both providers: answers, failures whose provider message quotes the key, broken streams.
        foreach (var (model, key) in new[] { ("openai/gpt-4o-mini", openAiKey), ("anthropic/claude-haiku-4-5", anthropicKey) })
        {
            using var created = await r.RecordAsync(user.Client.PostAsJsonAsync("api/conversations", new { model }));
            var conversation = (await created.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>()).GetProperty("id").GetGuid();
            var url = $"api/conversations/{conversation}/messages";

            using (var ok = await r.RecordAsync(user.Client.PostAsJsonAsync(url, new { content = "hello there" })))
            {
                Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
            }
            fake.Enqueue(FakeScenario.Error(401, $"Incorrect API key provided: {key}. You can find your API key at the dashboard."));
            using (var refused = await r.RecordAsync(user.Client.PostAsJsonAsync(url, new { content = "refused" })))
            {
                Assert.Equal(HttpStatusCode.BadGateway, refused.StatusCode);
            }
            fake.Enqueue(FakeScenario.Error(500, $"internal error while using key {key}"));
            using (await r.RecordAsync(user.Client.PostAsJsonAsync(url, new { content = "server error" }))) { }
            fake.Enqueue(FakeScenario.Error(429, $"rate limit for key {key}"));
            using (await r.RecordAsync(user.Client.PostAsJsonAsync(url, new { content = "slow down" }))) { }

            fake.Enqueue(new FakeScenario { Text = "one two three four", StreamErrorAfterChunks = 2, ErrorMessage = $"overloaded ({key})" });
            using (var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = JsonContent.Create(new { content = "stream then break" }) })
            using (var stream = await user.Client.SendForEventsAsync(request, TestContext.Current.CancellationToken))
            {
                var events = await stream.ReadAllEventsAsync(TestContext.Current.CancellationToken);
                var raw = string.Concat(events.Select(e => e.Raw));
                Assert.Contains(events, e => e.Type is "error" or "done");
                Assert.DoesNotContain(key, raw, StringComparison.Ordinal);
            }
            fake.Enqueue(new FakeScenario { Text = "one two three four", FailAfterChunks = 1 });
            using (await r.RecordAsync(user.Client.PostAsJsonAsync(url, new { content = "connection drops" }))) { }

            using (await r.RecordAsync(user.Client.GetAsync($"api/conversations/{conversation}"))) { }
            using (await r.RecordAsync(user.Client.GetAsync($"api/conversations/{conversation}/export?format=markdown"))) { }
            using (await r.RecordAsync(user.Client.GetAsync($"api/conversations/{conversation}/export?format=json"))) { }
        }
        Assert.Contains(fake.ChatRequests, q => q.ApiKey == openAiKey);
        Assert.Contains(fake.ChatRequests, q => q.ApiKey == anthropicKey || q.Header("x-api-key") == anthropicKey);

        // A client that (wrongly) sends a key as its bearer token, and the operational endpoints.
        using (var misuse = new HttpRequestMessage(HttpMethod.Get, "api/me"))
        {
            misuse.Headers.TryAddWithoutValidation("Authorization", "Bearer " + openAiKey);
            using (await r.RecordAsync(anonymous.SendAsync(misuse))) { }
        }
        // Let the health monitor probe both providers at least once.
        await Task.Delay(TimeSpan.FromSeconds(1.5), TestContext.Current.CancellationToken);
        foreach (var path in new[] { "metrics", "health", "health/live", "health/ready", "api/models", "openapi/v1.json", "scalar", "no/such/route" })
        {
            using (await r.RecordAsync(user.Client.GetAsync(path))) { }
        }
        using var metrics = await anonymous.GetAsync("metrics");
        var metricsText = await metrics.Content.ReadAsStringAsync();
        Assert.Contains("jackcwf_", metricsText, StringComparison.Ordinal);

        foreach (var (secret, what) in new[] { (openAiKey, "OpenAI key"), (anthropicKey, "Anthropic key"), (password, "user's password") })
        {
            r.AssertNoneContains(secret, what);
            AssertLogsClean(api, secret, what);
            Assert.DoesNotContain(secret, metricsText, StringComparison.Ordinal);
        }
        // The searches above are only meaningful if the service actually logged and answered.
        Assert.True(api.LogLines.Count > 20, $"only {api.LogLines.Count} log lines were captured");
        Assert.True(r.Count > 30, $"only {r.Count} responses were recorded");
    }

    [Fact]
    public async Task Database_password_never_appears_in_logs_or_responses()
    {
        var role = $"canary_{Guid.NewGuid():N}"[..20];
        var password = $"pg-canary-{Guid.NewGuid():N}";
        var db = await TestPostgres.CreateDatabaseAsync("canary", TestContext.Current.CancellationToken);
        var admin = new NpgsqlConnectionStringBuilder(TestPostgres.AdminConnectionString);
        await ExecuteAsync(TestPostgres.AdminConnectionString,
            $"CREATE ROLE {role} LOGIN PASSWORD '{password}'",
            $"ALTER DATABASE \"{db.Name}\" OWNER TO {role}");
        try
        {
            var url = $"postgresql://{role}:{password}@{admin.Host ?? "127.0.0.1"}:{admin.Port}/{db.Name}";
            var r = new Recorder();

            var migrate = await Service.RunCommandAsync(["migrate"], new Dictionary<string, string?> { ["DATABASE_URL"] = url, ["LOG_LEVEL"] = "Debug" });
            Assert.True(migrate.ExitCode == 0, $"migrate exited {migrate.ExitCode}:\n{migrate.Output}");
            Assert.DoesNotContain(password, migrate.Output, StringComparison.Ordinal);

            await using (var api = await Service.StartAsync(new Dictionary<string, string?>
            {
                ["DATABASE_URL"] = url,
                ["ENABLE_MONITORING"] = "true",
                ["MONITORING_INTERVAL_SECONDS"] = "1",
                ["LOG_LEVEL"] = "Debug",
                ["DEMO_CHUNK_DELAY_MS"] = "0",
            }))
            {
                using var user = await TestUser.SignUpAsync(api);
                var conversation = await user.CreateConversationAsync();
                await user.ChatAsync(conversation, "stored in PostgreSQL");
                using var anonymous = api.CreateClient();
                foreach (var path in new[] { "metrics", "health", "health/ready", "api/conversations", "api/conversations/not-a-uuid", "openapi/v1.json" })
                {
                    using (await r.RecordAsync(user.Client.GetAsync(path))) { }
                    using (await r.RecordAsync(anonymous.GetAsync(path))) { }
                }
                using (await r.RecordAsync(user.Client.PostAsync($"api/conversations/{conversation}/messages",
                    new StringContent("{\"content\":", Encoding.UTF8, "application/json")))) { }
                await Task.Delay(TimeSpan.FromSeconds(1.2), TestContext.Current.CancellationToken);
                r.AssertNoneContains(password, "database password");
                AssertLogsClean(api, password, "database password");
                Assert.Contains(api.LogLines, l => l.Contains("schema", StringComparison.OrdinalIgnoreCase));
            }

            // The same credentials against a closed port: the service waits unready, migrate fails; neither names the password.
            var closed = $"postgresql://{role}:{password}@127.0.0.1:{Ports.Next()}/{db.Name}";
            var failed = await Service.RunCommandAsync(["migrate"], new Dictionary<string, string?> { ["DATABASE_URL"] = closed });
            Assert.NotEqual(0, failed.ExitCode);
            Assert.DoesNotContain(password, failed.Output, StringComparison.Ordinal);
            await using (var unready = await Service.StartAsync(new Dictionary<string, string?> { ["DATABASE_URL"] = closed, ["LOG_LEVEL"] = "Debug" }, waitForReady: false))
            {
                using var client = unready.CreateClient();
                await WaitForStatusAsync(client, "health/live", HttpStatusCode.OK);
                using (var ready = await r.RecordAsync(client.GetAsync("health/ready")))
                {
                    Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
                }
                using (await r.RecordAsync(client.PostAsJsonAsync("api/auth/login", new { email = "a@example.test", password = "Passw0rd-x" }))) { }
                await unready.WaitForLogAsync("Database not reachable", TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);
                r.AssertNoneContains(password, "database password");
                AssertLogsClean(unready, password, "database password");
            }

            // An unsupported URL is refused at start-up without echoing it.
            var (code, stdout, stderr) = await Service.RunToExitAsync(
                new Dictionary<string, string?> { ["DATABASE_URL"] = $"mysql://{role}:{password}@127.0.0.1/{db.Name}" }, TimeSpan.FromSeconds(30));
            Assert.Equal(2, code);
            Assert.Contains("DATABASE_URL", stderr, StringComparison.Ordinal);
            Assert.DoesNotContain(password, stdout + stderr, StringComparison.Ordinal);
        }
        finally
        {
            await db.DisposeAsync();
            await ExecuteAsync(TestPostgres.AdminConnectionString, $"DROP ROLE IF EXISTS {role}");
        }
    }

    internal static async Task WaitForStatusAsync(HttpClient client, string path, HttpStatusCode status, double seconds = 30)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        var last = "no answer";
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                using var response = await client.GetAsync(path);
                if (response.StatusCode == status)
                {
                    return;
                }
                last = ((int)response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
            catch (HttpRequestException e)
            {
                last = e.Message;
            }
            await Task.Delay(100);
        }
        Assert.Fail($"{path} did not answer {(int)status} within {seconds}s (last: {last})");
    }

    private static async Task ExecuteAsync(string connectionString, params string[] statements)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        foreach (var sql in statements)
        {
            await using var command = new NpgsqlCommand(sql, connection);
            await command.ExecuteNonQueryAsync();
        }
    }
}
