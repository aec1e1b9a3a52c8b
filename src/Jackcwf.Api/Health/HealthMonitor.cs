using System.Diagnostics;
using Jackcwf.Api.Ai;
using Jackcwf.Api.Data;
using Jackcwf.Api.Telemetry;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Health;

/// <summary>
/// The seed's health monitor as a hosted service: every <c>MONITORING_INTERVAL_SECONDS</c> it checks
/// the database, Redis (when configured) and each configured provider's reachability, and publishes
/// the results as metrics (<c>jackcwf_health_check_status</c>) and logs (on every change).
/// </summary>
internal sealed class HealthMonitor(
    IServiceScopeFactory scopes,
    IOptions<MonitoringOptions> options,
    IOptions<ProvidersOptions> providers,
    ModelCatalog catalog,
    IHttpClientFactory httpClients,
    JackcwfMetrics metrics,
    IEnumerable<IDependencyProbe> probes,
    SchemaState schema,
    ILogger<HealthMonitor> logger) : BackgroundService
{
    private readonly Dictionary<string, bool> _last = new();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var o = options.Value;
        if (!o.Enabled)
        {
            logger.LogInformation("Health monitor disabled (ENABLE_MONITORING=false)");
            return;
        }
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(o.IntervalSeconds));
        do
        {
            await CheckAllAsync(stoppingToken);
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    internal async Task CheckAllAsync(CancellationToken ct)
    {
        var timeout = TimeSpan.FromMilliseconds(options.Value.HealthCheckTimeoutMs);
        var checks = new List<Task> { RunAsync("provider_demo", _ => Task.FromResult(true), timeout, ct) };
        // While the first migration runs the database is busy, not down (readiness already says
        // "schema not current yet"): checking it then only produces a false "unhealthy".
        if (schema.IsCurrent)
        {
            checks.Add(RunAsync("database", async t =>
            {
                await using var scope = scopes.CreateAsyncScope();
                return await scope.ServiceProvider.GetRequiredService<AppDbContext>().Database.CanConnectAsync(t);
            }, timeout, ct));
        }
        foreach (var probe in probes)
        {
            checks.Add(RunAsync(probe.Name, probe.CheckAsync, timeout, ct));
        }
        var p = providers.Value;
        if (catalog.IsProviderConfigured(Providers.OpenAI))
        {
            checks.Add(RunAsync("provider_openai", t => ReachableAsync(p.OpenAI.BaseUrl ?? "https://api.openai.com/v1", t), timeout, ct));
        }
        if (catalog.IsProviderConfigured(Providers.Anthropic))
        {
            checks.Add(RunAsync("provider_anthropic", t => ReachableAsync(p.Anthropic.BaseUrl ?? "https://api.anthropic.com", t), timeout, ct));
        }
        if (catalog.IsProviderConfigured(Providers.Ollama))
        {
            checks.Add(RunAsync("provider_ollama", t => ReachableAsync(p.Ollama.BaseUrl!, t), timeout, ct));
        }
        await Task.WhenAll(checks);
    }

    /// <summary>Reachable means the server answers HTTP at all (any status): no key is sent, no tokens are spent.</summary>
    private async Task<bool> ReachableAsync(string baseUrl, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, baseUrl.TrimEnd('/') + "/models");
        using var response = await httpClients.CreateClient(ChatClientProvider.HttpClientName).SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        return (int)response.StatusCode < 500;
    }

    private async Task RunAsync(string name, Func<CancellationToken, Task<bool>> check, TimeSpan timeout, CancellationToken ct)
    {
        var start = Stopwatch.GetTimestamp();
        bool ok;
        string? reason = null;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        try
        {
            ok = await check(cts.Token);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            ok = false;
            reason = $"no answer within {timeout.TotalMilliseconds} ms";
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            ok = false;
            reason = ex.GetType().Name;
        }
        metrics.HealthResult(name, ok, Stopwatch.GetElapsedTime(start));
        lock (_last)
        {
            if (_last.TryGetValue(name, out var previous) && previous == ok)
            {
                return;
            }
            _last[name] = ok;
        }
        if (ok)
        {
            logger.LogInformation("Dependency {Dependency} is healthy", name);
        }
        else
        {
            logger.LogWarning("Dependency {Dependency} is unhealthy: {Reason}", name, reason ?? "check failed");
        }
    }
}

/// <summary>An extra dependency for the monitor (Redis registers one when configured).</summary>
public interface IDependencyProbe
{
    string Name { get; }
    Task<bool> CheckAsync(CancellationToken ct);
}
