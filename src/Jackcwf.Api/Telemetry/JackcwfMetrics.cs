using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Reflection;
using Jackcwf.ServiceDefaults;
using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Telemetry;

/// <summary>
/// Every platform metric, named in one place (docs/metrics.md documents them). Instrument names are
/// already Prometheus names; the exporter appends <c>_total</c> to counters. Labels stay
/// low-cardinality: never a user, message or key id.
/// </summary>
public sealed class JackcwfMetrics : IDisposable
{
    private static readonly double[] LatencyBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

    private readonly Meter _meter;
    private readonly Counter<long> _httpErrors;
    private readonly Counter<long> _logins;
    private readonly Counter<long> _conversations;
    private readonly Counter<long> _messages;
    private readonly UpDownCounter<long> _inFlight;
    private readonly Counter<long> _generations;
    private readonly Histogram<double> _ttft;
    private readonly Histogram<double> _duration;
    private readonly Counter<long> _tokens;
    private readonly Counter<double> _cost;
    private readonly Counter<long> _providerErrors;
    private readonly Counter<long> _resumes;
    private readonly Counter<long> _refusals;
    private readonly Counter<long> _cacheTokensSaved;
    private readonly Counter<long> _retries;
    private readonly Counter<long> _fallbacks;
    private readonly Counter<long> _cache;
    private readonly Histogram<double> _dbDuration;
    private readonly Counter<long> _audit;
    private readonly ActiveUsers _activeUsers = new();
    private readonly Dictionary<string, (int Status, double Seconds)> _health = new();
    private readonly Lock _healthLock = new();
    private readonly long _startUnix = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    public JackcwfMetrics(IMeterFactory meterFactory, DrainState drain, IOptions<BuildOptions> build)
    {
        _meter = meterFactory.Create(Extensions.PlatformMeterName);
        var version = build.Value.Version ?? typeof(JackcwfMetrics).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";
        var commit = build.Value.Commit ?? "unknown";
        _meter.CreateObservableGauge("jackcwf_build_info", () => new Measurement<long>(1, new("version", version), new("commit", commit)), description: "Build identity (always 1).");
        _meter.CreateObservableGauge("jackcwf_process_start_time_seconds", () => _startUnix, unit: "s", description: "Unix time the process started.");
        _meter.CreateObservableGauge("jackcwf_draining", () => drain.IsDraining ? 1 : 0, description: "1 from SIGTERM until exit.");
        _meter.CreateObservableGauge("jackcwf_active_users", () => _activeUsers.Count(), description: "Distinct users with an authenticated request in the last 5 minutes on this replica.");
        _meter.CreateObservableGauge("jackcwf_generation_oldest_age_seconds", () => OldestGenerationAge(), unit: "s", description: "Age of the oldest generation still running on this replica.");
        _meter.CreateObservableGauge("jackcwf_health_check_status", HealthStatuses, description: "Last health-monitor result per dependency (1 healthy).");
        _meter.CreateObservableGauge("jackcwf_health_check_duration_seconds", HealthDurations, unit: "s", description: "Duration of the last health check per dependency.");
        _meter.CreateObservableGauge("jackcwf_redis_connected", () => RedisConnected() ? 1 : 0, description: "1 while the Redis backplane is connected.");
        _meter.CreateObservableGauge("jackcwf_response_cache_redis_writes_paused", () => RedisCacheWritesPaused?.Invoke() == true ? 1 : 0,
            description: "1 while Redis is 70 % full against its maxmemory and the response cache stores new answers in memory only.");
        _meter.CreateObservableGauge("jackcwf_process_open_fds", () => OpenFds(), description: "File descriptors in use.");
        _meter.CreateObservableGauge("jackcwf_process_max_fds", () => MaxFds(), description: "File descriptor limit.");

        _httpErrors = _meter.CreateCounter<long>("jackcwf_http_errors", description: "Error responses by status class and problem type.");
        _logins = _meter.CreateCounter<long>("jackcwf_logins", description: "Sign-in attempts.");
        _conversations = _meter.CreateCounter<long>("jackcwf_conversations_created", description: "Conversations created.");
        _messages = _meter.CreateCounter<long>("jackcwf_messages_created", description: "Messages stored.");
        _inFlight = _meter.CreateUpDownCounter<long>("jackcwf_generations_in_flight", description: "Generations running on this replica.");
        _generations = _meter.CreateCounter<long>("jackcwf_generations", description: "Finished generations by final status.");
        _ttft = _meter.CreateHistogram("jackcwf_time_to_first_token_seconds", unit: "s", description: "Request accepted to first streamed token.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });
        _duration = _meter.CreateHistogram("jackcwf_generation_duration_seconds", unit: "s", description: "Whole generation duration.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });
        _tokens = _meter.CreateCounter<long>("jackcwf_llm_tokens", description: "Tokens reported by providers.");
        _cost = _meter.CreateCounter<double>("jackcwf_llm_cost_usd", description: "LLM API cost in US dollars from catalogue prices.");
        _providerErrors = _meter.CreateCounter<long>("jackcwf_provider_errors", description: "Provider failures by kind.");
        _resumes = _meter.CreateCounter<long>("jackcwf_stream_resumes", description: "Stream resumes with Last-Event-ID.");
        _refusals = _meter.CreateCounter<long>("jackcwf_limit_refusals", description: "Requests refused by a limit.");
        _cache = _meter.CreateCounter<long>("jackcwf_cache_requests", description: "Cache lookups by cache and result.");
        _audit = _meter.CreateCounter<long>("jackcwf_audit_entries", description: "Audit log entries written, by action and outcome (write_failed when the database refused one).");
        _cacheTokensSaved = _meter.CreateCounter<long>("jackcwf_cache_tokens_saved", description: "Tokens not sent to a provider because the response cache answered.");
        _retries = _meter.CreateCounter<long>("jackcwf_provider_retries", description: "Provider calls retried before the first token, by provider and failure kind.");
        _fallbacks = _meter.CreateCounter<long>("jackcwf_model_fallbacks", description: "Calls answered by a fallback model, by requested and answering model.");
        _meter.CreateObservableGauge("jackcwf_provider_circuit_state", CircuitStates,
            description: "Circuit breaker state per provider endpoint: 0 closed, 1 open, 2 half-open.");
        _dbDuration = _meter.CreateHistogram("jackcwf_db_query_duration_seconds", unit: "s", description: "Database command duration.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] });
    }

    /// <summary>Reads the start times of running generations (set by the runner).</summary>
    public Func<IEnumerable<long>>? GenerationStartTimestamps { get; set; }

    /// <summary>Reports the backplane state (set by the Redis backplane when configured).</summary>
    public Func<bool>? RedisState { get; set; }

    /// <summary>Whether the response cache keeps new answers out of Redis (<see cref="Backplane.RedisMemoryPressure"/>); unset without Redis.</summary>
    public Func<bool>? RedisCacheWritesPaused { get; set; }

    public void HttpError(int status, string errorType) =>
        _httpErrors.Add(1, new("status_class", status >= 500 ? "5xx" : "4xx"), new("error_type", errorType));

    public void Login(string method, bool success) =>
        _logins.Add(1, new("method", method), new("result", success ? "success" : "failure"));

    public void ConversationCreated() => _conversations.Add(1);

    public void AuditEntry(string action, string outcome) => _audit.Add(1, new("action", action), new("outcome", outcome));

    public void MessageCreated(string role) => _messages.Add(1, new KeyValuePair<string, object?>("role", role));

    public void GenerationStarted(string provider) => _inFlight.Add(1, new KeyValuePair<string, object?>("provider", provider));

    public void GenerationFinished(string provider, string model, string status, TimeSpan duration)
    {
        _inFlight.Add(-1, new KeyValuePair<string, object?>("provider", provider));
        _generations.Add(1, new("provider", provider), new("model", model), new("status", status));
        _duration.Record(duration.TotalSeconds, new("provider", provider), new("model", model), new("status", status));
    }

    public void FirstToken(string provider, string model, TimeSpan elapsed) =>
        _ttft.Record(elapsed.TotalSeconds, new("provider", provider), new("model", model));

    public void Usage(string provider, string model, long input, long output, decimal cost)
    {
        _tokens.Add(input, new("provider", provider), new("model", model), new("direction", "input"));
        _tokens.Add(output, new("provider", provider), new("model", model), new("direction", "output"));
        _cost.Add((double)cost, new("provider", provider), new("model", model));
    }

    public void ProviderError(string provider, string kind) =>
        _providerErrors.Add(1, new("provider", provider), new("kind", kind));

    public void StreamResumed() => _resumes.Add(1);

    public void LimitRefused(string limit) => _refusals.Add(1, new KeyValuePair<string, object?>("limit", limit));

    public void CacheTokensSaved(long tokens) => _cacheTokensSaved.Add(tokens, new KeyValuePair<string, object?>("cache", "response"));

    public void Retry(string provider, string kind) => _retries.Add(1, new("provider", provider), new("kind", kind));

    /// <summary>A call answered by a fallback model; <paramref name="count"/> 0 creates the series at start-up.</summary>
    public void Fallback(string requested, string answering, long count = 1) =>
        _fallbacks.Add(count, new("requested_model", requested), new("model", answering));

    /// <summary>Reads the circuit states at scrape time (set by the pipeline's breaker registry).</summary>
    public Func<IEnumerable<(string Endpoint, int State)>>? CircuitStateSource { get; set; }

    private IEnumerable<Measurement<int>> CircuitStates() =>
        (CircuitStateSource?.Invoke() ?? []).Select(c => new Measurement<int>(c.State, new KeyValuePair<string, object?>("endpoint", c.Endpoint)));

    /// <summary>Creates the response cache's series at 0 when the cache is on, before its first lookup.</summary>
    public void ResponseCacheEnabled()
    {
        _cache.Add(0, new("cache", "response"), new("result", "hit"));
        _cache.Add(0, new("cache", "response"), new("result", "miss"));
        _cacheTokensSaved.Add(0, new KeyValuePair<string, object?>("cache", "response"));
    }

    public void Cache(string cache, bool hit) => _cache.Add(1, new("cache", cache), new("result", hit ? "hit" : "miss"));

    public void DbCommand(string provider, string operation, double seconds) =>
        _dbDuration.Record(seconds, new("provider", provider), new("operation", operation));

    public void UserSeen(Guid userId) => _activeUsers.Seen(userId);

    public void HealthResult(string dependency, bool healthy, TimeSpan duration)
    {
        lock (_healthLock)
        {
            _health[dependency] = (healthy ? 1 : 0, duration.TotalSeconds);
        }
    }

    private IEnumerable<Measurement<int>> HealthStatuses()
    {
        lock (_healthLock)
        {
            return _health.Select(kv => new Measurement<int>(kv.Value.Status, new KeyValuePair<string, object?>("dependency", kv.Key))).ToList();
        }
    }

    private IEnumerable<Measurement<double>> HealthDurations()
    {
        lock (_healthLock)
        {
            return _health.Select(kv => new Measurement<double>(kv.Value.Seconds, new KeyValuePair<string, object?>("dependency", kv.Key))).ToList();
        }
    }

    private double OldestGenerationAge()
    {
        var starts = GenerationStartTimestamps?.Invoke();
        if (starts is null)
        {
            return 0;
        }
        var oldest = long.MaxValue;
        foreach (var s in starts)
        {
            oldest = Math.Min(oldest, s);
        }
        return oldest == long.MaxValue ? 0 : Stopwatch.GetElapsedTime(oldest).TotalSeconds;
    }

    private bool RedisConnected() => RedisState?.Invoke() ?? false;

    private static long OpenFds()
    {
        try
        {
            return Directory.EnumerateFileSystemEntries("/proc/self/fd").LongCount();
        }
        catch (IOException)
        {
            return 0;
        }
        catch (UnauthorizedAccessException)
        {
            return 0;
        }
    }

    private static long MaxFds()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/limits"))
            {
                if (line.StartsWith("Max open files", StringComparison.Ordinal))
                {
                    var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    return long.TryParse(parts[3], out var v) ? v : 0;
                }
            }
        }
        catch (IOException)
        {
        }
        return 0;
    }

    public void Dispose() => _meter.Dispose();

    /// <summary>Approximate distinct-user count over a sliding 5-minute window, cheap to update.</summary>
    private sealed class ActiveUsers
    {
        private readonly System.Collections.Concurrent.ConcurrentDictionary<Guid, long> _lastSeen = new();

        public void Seen(Guid id) => _lastSeen[id] = Environment.TickCount64;

        public int Count()
        {
            var cutoff = Environment.TickCount64 - 300_000;
            var n = 0;
            foreach (var (id, seen) in _lastSeen)
            {
                if (seen < cutoff)
                {
                    _lastSeen.TryRemove(id, out _);
                }
                else
                {
                    n++;
                }
            }
            return n;
        }
    }
}
