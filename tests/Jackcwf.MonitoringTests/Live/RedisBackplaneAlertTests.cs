using Jackcwf.MonitoringTests.Infrastructure;
using Jackcwf.Testing;

namespace Jackcwf.MonitoringTests.Live;

/// <summary>JackcwfRedisBackplaneDown against a real Redis that goes away under a running replica.</summary>
public sealed class RedisBackplaneAlertTests
{
    private static string AlertExpr => MonitoringFiles.Alerts.Single(a => a.Alert == "JackcwfRedisBackplaneDown").Expr;

    [Fact]
    public async Task TheAlertConditionHoldsOnlyOnceTheConfiguredRedisIsGone()
    {
        await using var redis = await RedisServer.StartAsync(cancellationToken: TestContext.Current.CancellationToken);
        await using var api = await ApiProcess.StartAsync(new ApiProcessOptions
        {
            Environment = new Dictionary<string, string?>
            {
                ["DATABASE_URL"] = null,
                ["REDIS_URL"] = redis.Url,
                ["MONITORING_INTERVAL_SECONDS"] = "1",
                ["HEALTH_CHECK_TIMEOUT_MS"] = "500",
                ["SHUTDOWN_DRAIN_DELAY_SECONDS"] = "0",
                ["LOG_LEVEL"] = "Warning",
            },
        }, TestContext.Current.CancellationToken);
        await using var prometheus = await PrometheusServer.StartAsync($"127.0.0.1:{api.Port}", MonitoringFiles.RuleFiles);

        var connected = await prometheus.EventuallyAsync("max(jackcwf_redis_connected{job=\"jackcwf\"})", v => v == 1);
        Assert.True(connected == 1, $"jackcwf_redis_connected = {connected} with Redis running.\n{api.Logs[^Math.Min(api.Logs.Length, 3000)..]}");
        var healthy = await prometheus.EventuallyAsync("max(jackcwf_health_check_status{job=\"jackcwf\", dependency=\"redis\"})", v => v == 1);
        Assert.True(healthy == 1, $"The redis health check = {healthy} with Redis running.");
        Assert.Empty(await prometheus.QueryAsync(AlertExpr));

        redis.Kill();

        var down = await prometheus.EventuallyAsync($"count({AlertExpr})", v => v == 1, TimeSpan.FromSeconds(30));
        Assert.True(down == 1, $"`{AlertExpr}` should select the replica once Redis is gone (got {down?.ToString() ?? "nothing"}).");
        var failing = await prometheus.EventuallyAsync("max(jackcwf_health_check_status{job=\"jackcwf\", dependency=\"redis\"})", v => v == 0);
        Assert.True(failing == 0, $"The redis health check = {failing} after Redis stopped.");
    }
}
