using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Jackcwf.MonitoringTests.Infrastructure;

namespace Jackcwf.MonitoringTests.Live;

/// <summary>A real Prometheus scraping the running service sees the traffic in the counters, histograms and cost, and evaluates the rules without errors.</summary>
[Collection(LiveStackCollection.Name)]
public sealed class PrometheusLiveTests(LiveStackFixture stack)
{
    private const string Job = "job=\"jackcwf\"";
    private const string Paid = LiveStackFixture.PaidModel;
    private const string Failing = LiveStackFixture.FailingModel;

    private async Task AssertEventuallyAsync(string expr, Func<double?, bool> accept, string expectation)
    {
        var value = await stack.Prometheus.EventuallyAsync(expr, accept);
        Assert.True(accept(value), $"`{expr}` = {value?.ToString(CultureInfo.InvariantCulture) ?? "no data"}; expected {expectation}.\n{stack.Diagnostics()}");
    }

    [Fact]
    public async Task PrometheusScrapesTheServiceAndSeesItsBuild()
    {
        await AssertEventuallyAsync($"up{{{Job}}}", v => v == 1, "1");
        await AssertEventuallyAsync(
            $"sum(jackcwf_build_info{{{Job}, version=\"{LiveStackFixture.Version}\", commit=\"{LiveStackFixture.Commit}\"}})", v => v == 1,
            "1 (APP_VERSION and GIT_COMMIT as labels)");
        await AssertEventuallyAsync($"max(jackcwf_process_start_time_seconds{{{Job}}}) - (time() - 600)", v => v > 0, "a start time within the last 10 minutes");
    }

    [Fact]
    public async Task FinishedGenerationsAreCountedByModelAndStatus()
    {
        var f = stack.Facts;
        // The fallback's answer counts under the model that answered (demo/echo).
        var demo = f.DemoChatsCompleted + f.GatewayCompletions + f.FallbackAnswers;
        await AssertEventuallyAsync($"sum(jackcwf_generations_total{{{Job}, model=\"demo/echo\", status=\"complete\"}})", v => v == demo, $"{demo} demo generations complete (chat, gateway and fallback)");
        await AssertEventuallyAsync($"sum(jackcwf_generations_total{{{Job}, provider=\"openai\", model=\"demo/echo\", status=\"complete\"}})", v => v == f.FallbackAnswers, $"{f.FallbackAnswers} {LiveStackFixture.FallbackModel} call answered by demo/echo");
        await AssertEventuallyAsync($"sum(jackcwf_generations_total{{{Job}, provider=\"openai\", model=\"{Paid}\", status=\"complete\"}})", v => v == f.PaidChatsCompleted, $"{f.PaidChatsCompleted} {Paid} generations complete");
        await AssertEventuallyAsync($"sum(jackcwf_generations_total{{{Job}, provider=\"openai\", model=\"{Failing}\", status=\"failed\"}})", v => v == f.FailedChats, $"{f.FailedChats} {Failing} generation failed");
        await AssertEventuallyAsync($"sum(jackcwf_generations_total{{{Job}, status=\"failed\", model!=\"{Failing}\"}}) or vector(0)", v => v == 0, "no other failed generation");
        await AssertEventuallyAsync($"sum(jackcwf_generations_in_flight{{{Job}}})", v => v == 0, "no generation still running");
        await AssertEventuallyAsync($"max(jackcwf_generation_oldest_age_seconds{{{Job}}})", v => v == 0, "0 (none running)");
    }

    [Fact]
    public async Task TheModelPipelineExportsCircuitsFallbacksResponseCacheAndEmbeddings()
    {
        var f = stack.Facts;
        // Every configured endpoint from start-up; closed after the failures (too few calls to open it).
        await AssertEventuallyAsync($"count(jackcwf_provider_circuit_state{{{Job}}})", v => v == 2, "2 endpoints (demo and the fake OpenAI server)");
        await AssertEventuallyAsync($"max(jackcwf_provider_circuit_state{{{Job}}})", v => v == 0, "every circuit closed");
        await AssertEventuallyAsync(
            $"sum(jackcwf_model_fallbacks_total{{{Job}, requested_model=\"{LiveStackFixture.FallbackModel}\", model=\"demo/echo\"}})", v => v == f.FallbackAnswers, $"{f.FallbackAnswers} fallback");
        await AssertEventuallyAsync($"sum(jackcwf_cache_requests_total{{{Job}, cache=\"response\", result=\"hit\"}})", v => v == f.ResponseCacheHits, $"{f.ResponseCacheHits} response-cache hit");
        await AssertEventuallyAsync($"sum(jackcwf_cache_tokens_saved_total{{{Job}, cache=\"response\"}})", v => v > 0, "the tokens of the replayed answer");
        await AssertEventuallyAsync($"sum(jackcwf_embedding_inputs_total{{{Job}, model=\"local/all-minilm-l6-v2\"}})", v => v == f.EmbeddedInputs, $"{f.EmbeddedInputs} texts embedded");
        await AssertEventuallyAsync($"sum(jackcwf_embedding_duration_seconds_count{{{Job}, outcome=\"ok\"}})", v => v >= 1, "the embedding call timed");
    }

    [Fact]
    public async Task TheProviderFailureIsCountedForThatProvider()
    {
        await AssertEventuallyAsync($"sum(jackcwf_provider_errors_total{{{Job}, provider=\"openai\"}})", v => v >= 1, "at least one OpenAI error");
        await AssertEventuallyAsync($"sum(jackcwf_provider_errors_total{{{Job}, provider!=\"openai\"}})", v => v is null or 0, "no error for any other provider");
        await AssertEventuallyAsync($"sum(jackcwf_provider_errors_total{{{Job}, provider=\"openai\", kind=\"unavailable\"}})", v => v >= 1, "the 500 classified as unavailable");
    }

    [Fact]
    public async Task TokensAndCostMatchTheProviderUsageAndTheCataloguePrices()
    {
        var f = stack.Facts;
        await AssertEventuallyAsync($"sum(jackcwf_llm_tokens_total{{{Job}, provider=\"openai\", model=\"{Paid}\", direction=\"input\"}})", v => v == f.PaidInputTokens, $"{f.PaidInputTokens} input tokens");
        await AssertEventuallyAsync($"sum(jackcwf_llm_tokens_total{{{Job}, provider=\"openai\", model=\"{Paid}\", direction=\"output\"}})", v => v == f.PaidOutputTokens, $"{f.PaidOutputTokens} output tokens");

        Assert.True(f.ExpectedPaidCostUsd > 0, $"The catalogue price of {Paid} is 0; the cost check needs a priced model.");
        Assert.True(Math.Abs(f.ReportedPaidCostUsd - f.ExpectedPaidCostUsd) < 1e-9,
            $"The done events reported costUsd {f.ReportedPaidCostUsd} in total, the catalogue gives {f.ExpectedPaidCostUsd}.");
        await AssertEventuallyAsync($"sum(jackcwf_llm_cost_usd_total{{{Job}, provider=\"openai\", model=\"{Paid}\"}})",
            v => v is { } c && Math.Abs(c - f.ExpectedPaidCostUsd) < 1e-9, $"{f.ExpectedPaidCostUsd} USD");
        await AssertEventuallyAsync($"sum(increase(jackcwf_llm_cost_usd_total{{{Job}, model=\"{Paid}\"}}[5m]))", v => v > 0, "the cost counter to have grown within the window");
        await AssertEventuallyAsync($"sum(jackcwf_llm_cost_usd_total{{{Job}, provider=\"demo\"}}) or vector(0)", v => v == 0, "0 USD for the free demo model");
    }

    [Fact]
    public async Task HistogramsRecordTheRequestsAndGenerations()
    {
        var f = stack.Facts;
        var demo = f.DemoChatsCompleted + f.GatewayCompletions + f.FallbackAnswers;
        // Only streamed answers have a first token: the gateway calls are not streamed (stream: false).
        var streamed = f.DemoChatsCompleted + f.FallbackAnswers;
        await AssertEventuallyAsync($"sum(jackcwf_time_to_first_token_seconds_count{{{Job}, model=\"demo/echo\"}})", v => v == streamed, $"{streamed} first tokens");
        await AssertEventuallyAsync($"sum(jackcwf_time_to_first_token_seconds_sum{{{Job}}}) > 0", v => v > 0, "a positive total time to first token");
        await AssertEventuallyAsync($"sum(jackcwf_generation_duration_seconds_count{{{Job}}})", v => v == demo + f.PaidChatsCompleted + f.FailedChats, "one observation per finished generation");
        await AssertEventuallyAsync(
            $"histogram_quantile(0.5, sum by (le) (jackcwf_generation_duration_seconds_bucket{{{Job}, model=\"demo/echo\"}}))", v => v > 0, "a positive median generation time");
        await AssertEventuallyAsync($"sum(http_server_request_duration_seconds_count{{{Job}, http_route=~\"/api/conversations/?\", http_request_method=\"POST\"}})",
            v => v == f.ConversationsCreated, $"{f.ConversationsCreated} POST /api/conversations");
        await AssertEventuallyAsync($"sum(jackcwf_db_query_duration_seconds_count{{{Job}, provider=\"sqlite\"}})", v => v > 0, "SQLite commands measured");
    }

    [Fact]
    public async Task UsersConversationsMessagesAndResumesAreCounted()
    {
        var f = stack.Facts;
        await AssertEventuallyAsync($"sum(jackcwf_conversations_created_total{{{Job}}})", v => v == f.ConversationsCreated, $"{f.ConversationsCreated} conversations");
        await AssertEventuallyAsync($"sum(jackcwf_messages_created_total{{{Job}, role=\"user\"}})", v => v == f.UserMessagesStored, $"{f.UserMessagesStored} user messages");
        await AssertEventuallyAsync($"sum(jackcwf_stream_resumes_total{{{Job}}})", v => v == f.StreamResumes, $"{f.StreamResumes} resume");
        await AssertEventuallyAsync($"sum(jackcwf_logins_total{{{Job}, method=\"password\", result=\"failure\"}})", v => v == f.FailedLogins, $"{f.FailedLogins} failed login");
        await AssertEventuallyAsync($"sum(jackcwf_logins_total{{{Job}, method=\"password\", result=\"success\"}})", v => v == f.SuccessfulLogins, $"{f.SuccessfulLogins} successful login");
        await AssertEventuallyAsync($"sum(jackcwf_active_users{{{Job}}})", v => v >= 1, "at least the test user");
    }

    [Fact]
    public async Task IdempotencyKeyLookupsAreCountedAsCacheMissesAndHits()
    {
        var f = stack.Facts;
        await AssertEventuallyAsync($"sum(jackcwf_cache_requests_total{{{Job}, cache=\"idempotency\", result=\"hit\"}})", v => v == f.IdempotentReplays, $"{f.IdempotentReplays} hit (the replayed request)");
        await AssertEventuallyAsync($"sum(jackcwf_cache_requests_total{{{Job}, cache=\"idempotency\", result=\"miss\"}})", v => v >= 1, "at least 1 miss (the first use of the key)");
    }

    [Fact]
    public async Task ApiKeyLookupsAndUnknownKeysAreCounted()
    {
        var f = stack.Facts;
        await AssertEventuallyAsync($"sum(jackcwf_cache_requests_total{{{Job}, cache=\"api_key\", result=\"miss\"}})", v => v >= 1, "at least 1 miss (the first use of the key)");
        await AssertEventuallyAsync($"sum(jackcwf_cache_requests_total{{{Job}, cache=\"api_key\", result=\"hit\"}})", v => v >= f.GatewayCompletions - 1, "the later uses of the key answered from the cache");
        await AssertEventuallyAsync($"sum(jackcwf_logins_total{{{Job}, method=\"api_key\", result=\"failure\"}})", v => v == 1, "1 refused unknown key");
    }

    [Fact]
    public async Task RefusedAndFailedRequestsAreCountedByType()
    {
        var f = stack.Facts;
        await AssertEventuallyAsync($"sum(jackcwf_limit_refusals_total{{{Job}, limit=\"input_size\"}})", v => v == f.InputSizeRefusals, $"{f.InputSizeRefusals} input-size refusal");
        await AssertEventuallyAsync($"sum(jackcwf_limit_refusals_total{{{Job}, limit=\"key_rate\"}})", v => v == f.KeyRateRefusals, $"{f.KeyRateRefusals} key-rate refusal");
        await AssertEventuallyAsync($"sum(jackcwf_limit_refusals_total{{{Job}, limit=\"budget\"}})", v => v == f.BudgetRefusals, $"{f.BudgetRefusals} budget refusal");
        await AssertEventuallyAsync($"sum(http_server_request_duration_seconds_count{{{Job}, http_response_status_code=\"429\"}})", v => v == f.KeyRateRefusals + f.BudgetRefusals, "both refusals answered 429");
        await AssertEventuallyAsync($"sum(jackcwf_http_errors_total{{{Job}, status_class=\"4xx\", error_type=\"not_found\"}})", v => v >= f.NotFoundAnswers, "the 404 counted as not_found");
        await AssertEventuallyAsync($"sum(http_server_request_duration_seconds_count{{{Job}, http_response_status_code=\"404\"}})", v => v >= f.NotFoundAnswers, "the 404 in the request histogram");
    }

    [Fact]
    public async Task TheHealthMonitorReportsTheDatabaseAndTheConfiguredProviders()
    {
        await AssertEventuallyAsync($"min(jackcwf_health_check_status{{{Job}, dependency=\"database\"}})", v => v == 1, "database healthy");
        await AssertEventuallyAsync($"count(jackcwf_health_check_status{{{Job}, dependency=\"provider_openai\"}})", v => v == 1, "the OpenAI provider checked");
        await AssertEventuallyAsync($"max(jackcwf_health_check_duration_seconds{{{Job}, dependency=\"database\"}})", v => v >= 0, "a check duration");
        await AssertEventuallyAsync($"max(jackcwf_draining{{{Job}}})", v => v == 0, "not draining");
        await AssertEventuallyAsync($"max(jackcwf_redis_connected{{{Job}}})", v => v == 0, "0 (no Redis configured)");
    }

    [Fact]
    public async Task TheLatencyQuantilesLeaveOutExactlyTheStreamingRoutes()
    {
        // The recording rules exclude chat and resume routes by a regex on http_route; it must match
        // the routes the service really reports (a trailing slash or a route constraint would slip through).
        var p95 = MonitoringFiles.RecordingRules.Single(r => r.Record == "jackcwf:http_server_request_duration_seconds:p95_rate5m").Expr;
        var regex = System.Text.RegularExpressions.Regex.Match(p95, "http_route!~\"([^\"]+)\"").Groups[1].Value;
        Assert.NotEmpty(regex);

        var routes = await stack.Prometheus.QueryAsync($"count by (http_route, http_request_method) (http_server_request_duration_seconds_count{{{Job}, http_route=~\"{regex}\"}})");
        var excluded = routes.Select(r => $"{r!["metric"]!["http_request_method"]} {r["metric"]!["http_route"]}").Order(StringComparer.Ordinal).ToList();

        // Besides probes and scrapes, exactly the three streaming routes.
        var excludedApi = excluded.Where(r => !r.Contains(" /health", StringComparison.Ordinal) && !r.EndsWith(" /metrics", StringComparison.Ordinal)).ToList();
        Assert.True(excludedApi.Count == 3, "Excluded routes: " + string.Join(", ", excluded));
        Assert.Contains("POST /v1/chat/completions", excludedApi);
        Assert.Contains(excludedApi, r => r.StartsWith("POST ", StringComparison.Ordinal) && r.TrimEnd('/').EndsWith("/messages", StringComparison.Ordinal));
        Assert.Contains(excludedApi, r => r.StartsWith("GET ", StringComparison.Ordinal) && r.EndsWith("/events", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("JackcwfServiceDown")]
    [InlineData("JackcwfTargetDown")]
    [InlineData("JackcwfHighErrorRate")]
    [InlineData("JackcwfHighLatencyP95")]
    [InlineData("JackcwfHighLatencyP99")]
    [InlineData("JackcwfHighCpuUsage")]
    [InlineData("JackcwfFileDescriptorsExhaustion")]
    [InlineData("JackcwfThreadPoolStarvation")]
    [InlineData("JackcwfDatabaseDown")]
    [InlineData("JackcwfDatabaseHealthCheckSlow")]
    [InlineData("JackcwfSlowDatabaseQueries")]
    [InlineData("JackcwfProviderDown")]
    [InlineData("JackcwfProviderHighErrorRate")]
    [InlineData("JackcwfGenerationFailureRate")]
    [InlineData("JackcwfGenerationStuck")]
    [InlineData("JackcwfSlowTimeToFirstToken")]
    [InlineData("JackcwfLlmDailySpendHigh")]
    [InlineData("JackcwfReplicaRestarted")]
    [InlineData("JackcwfLoginFailuresHigh")]
    [InlineData("JackcwfCacheHitRatioLow")]
    [InlineData("JackcwfBudgetExhausted")]
    [InlineData("JackcwfRateLimitRefusalsSurge")]
    [InlineData("JackcwfDrainingTooLong")]
    public async Task AlertExpressionSelectsRealSeriesOnceItsThresholdIsLifted(string alert)
    {
        // With every "<op> <number>" turned into ">= -Inf" the alert's selectors, joins and
        // aggregations must still find the service's series: a wrong label or a join that never
        // matches would otherwise keep the alert silent forever.
        var expr = MonitoringFiles.Alerts.Single(a => a.Alert == alert).Expr;
        var lifted = System.Text.RegularExpressions.Regex.Replace(expr, @"(>=|<=|==|!=|>|<)\s*-?[0-9]+(\.[0-9]+)?(?![0-9.*/a-zA-Z_(])", ">= -Inf");

        var deadline = DateTime.UtcNow.AddSeconds(20);
        JsonArray result;
        do
        {
            result = await stack.Prometheus.QueryAsync(lifted);
            if (result.Count > 0)
            {
                break;
            }

            await Task.Delay(500, TestContext.Current.CancellationToken);
        }
        while (DateTime.UtcNow < deadline);

        Assert.True(result.Count > 0, $"{alert}: `{lifted}` selects nothing from the running service.\n{stack.Diagnostics()}");
    }

    [Fact]
    public async Task TheRedisAlertStaysQuietWhenRedisIsNotConfigured()
    {
        // A single replica without REDIS_URL reports jackcwf_redis_connected 0; that alone must not page.
        await AssertEventuallyAsync($"max(jackcwf_redis_connected{{{Job}}})", v => v == 0, "0 (no Redis configured)");
        var expr = MonitoringFiles.Alerts.Single(a => a.Alert == "JackcwfRedisBackplaneDown").Expr;

        Assert.Empty(await stack.Prometheus.QueryAsync(expr));
    }

    [Fact]
    public async Task EveryRuleEvaluatesWithoutErrorAgainstRealData()
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        List<string> problems;
        do
        {
            var body = await stack.Prometheus.Http.GetFromJsonAsync<JsonObject>("api/v1/rules", TestContext.Current.CancellationToken);
            var rules = body!["data"]!["groups"]!.AsArray().SelectMany(g => g!["rules"]!.AsArray()).ToList();
            Assert.Equal(MonitoringFiles.Alerts.Count + MonitoringFiles.RecordingRules.Count, rules.Count);
            problems = [.. rules.Where(r => (string?)r!["health"] != "ok").Select(r => $"{r!["name"]}: {r["health"]} {r["lastError"]}")];
            if (problems.Count == 0)
            {
                break;
            }

            await Task.Delay(500, TestContext.Current.CancellationToken);
        }
        while (DateTime.UtcNow < deadline);

        Assert.True(problems.Count == 0, "Rules not evaluated cleanly:\n" + string.Join("\n", problems));
    }

    [Fact]
    public async Task RecordingRulesAndTheWatchdogProduceSeries()
    {
        await AssertEventuallyAsync($"jackcwf:http_server_requests:rate5m{{{Job}}}", v => v > 0, "a positive request rate");
        await AssertEventuallyAsync($"jackcwf:http_server_requests_5xx:ratio_rate5m{{{Job}}}", v => v >= 0, "a ratio, 0 or more");
        await AssertEventuallyAsync($"jackcwf:http_server_request_duration_seconds:p95_rate5m{{{Job}}}", v => v > 0, "a positive P95");
        await AssertEventuallyAsync($"jackcwf:llm_cost_usd:rate1h{{{Job}}}", v => v > 0, "a positive cost rate");
        await AssertEventuallyAsync("count(ALERTS{alertname=\"JackcwfWatchdog\", alertstate=\"firing\"})", v => v == 1, "the watchdog firing");
        await AssertEventuallyAsync("count(ALERTS{alertname=\"JackcwfServiceDown\"}) or vector(0)", v => v == 0, "no JackcwfServiceDown while the service runs");
    }

    [Fact]
    public async Task EveryDashboardQueryRunsAgainstTheLiveData()
    {
        var failures = new List<string>();
        var empty = new List<string>();
        foreach (var query in Dashboards.Files.SelectMany(Dashboards.Queries))
        {
            try
            {
                var result = await stack.Prometheus.QueryAsync(PromQl.FromGrafana(query.Expr, "1m"));
                if (result.Count == 0)
                {
                    empty.Add($"{query.Dashboard} {query.Where}");
                }
            }
            catch (InvalidOperationException e)
            {
                failures.Add($"{query.Dashboard} {query.Where}: {e.Message}");
            }
        }

        Assert.True(failures.Count == 0, string.Join("\n", failures));
        // The headline panels must show data after the traffic (others need exporters or rarer events).
        foreach (var headline in new[] { "\"Latency P50 / P95 / P99\"", "\"Requests / s\"", "\"Cost per hour by model\"", "\"Time to first token\"", "\"Health checks\"", "\"Build and uptime\"" })
        {
            Assert.DoesNotContain(empty, e => e.Contains("panel " + headline, StringComparison.Ordinal) && e.EndsWith(" A", StringComparison.Ordinal));
        }
    }
}
