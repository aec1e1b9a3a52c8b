using System.Diagnostics;
using System.Net;

namespace Jackcwf.LoadBalancer.Tests;

public sealed class LoadBalancingTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task RoundRobinSpreadsRequestsEvenlyAndSetsNoStickyCookieByDefault()
    {
        await using var a = await FakeReplica.StartAsync("a");
        await using var b = await FakeReplica.StartAsync("b");
        await using var c = await FakeReplica.StartAsync("c");
        // Health checks off: a probe timing out on a busy machine must not change the rotation.
        await using var lb = await Balancer.StartAsync([a.Url, b.Url, c.Url], Balancer.WithoutHealthChecks);
        using var client = lb.Client();

        var answeredBy = new List<string>();
        for (var i = 0; i < 30; i++)
        {
            using var response = await client.GetAsync("whoami", Ct);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.False(response.Headers.Contains("Set-Cookie"), "the sticky cookie is off unless enabled");
            answeredBy.Add(await response.Content.ReadAsStringAsync(Ct));
        }

        Assert.Equal([10, 10, 10], [a.Hits("/whoami"), b.Hits("/whoami"), c.Hits("/whoami")]);
        // Round robin, not random: no replica answers twice in a row.
        Assert.All(answeredBy.Zip(answeredBy.Skip(1)), pair => Assert.NotEqual(pair.First, pair.Second));
    }

    [Fact]
    public async Task ReplicaWhoseReadinessTurns503StopsReceivingNewRequestsWithinTheHealthCheckWindow()
    {
        await using var draining = await FakeReplica.StartAsync("draining");
        await using var healthy = await FakeReplica.StartAsync("healthy");
        await using var lb = await Balancer.StartAsync([draining.Url, healthy.Url]);
        using var client = lb.Client();
        for (var i = 0; i < 4; i++)
        {
            (await client.GetAsync("whoami", Ct)).EnsureSuccessStatusCode();
        }
        Assert.True(draining.Hits("/whoami") > 0, "both replicas serve before the drain");

        // What a replica does on SIGTERM: readiness 503 at once, requests still served for the drain delay.
        var clock = Stopwatch.StartNew();
        draining.Ready = false;
        var consecutiveHealthy = 0;
        while (consecutiveHealthy < 10)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), "the draining replica still receives requests after 15 s");
            using var response = await client.GetAsync("whoami", Ct);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            consecutiveHealthy = await response.Content.ReadAsStringAsync(Ct) == "healthy" ? consecutiveHealthy + 1 : 0;
            await Task.Delay(50, Ct);
        }
        var removedAfter = clock.Elapsed;
        TestContext.Current.SendDiagnosticMessage($"draining replica removed after {removedAfter.TotalSeconds:F1} s");

        var hitsWhenRemoved = draining.Hits("/whoami");
        for (var i = 0; i < 20; i++)
        {
            (await client.GetAsync("whoami", Ct)).EnsureSuccessStatusCode();
        }
        Assert.Equal(hitsWhenRemoved, draining.Hits("/whoami"));
        // Interval 2 s x threshold 2 + probe timeout 1 s, plus slack for a busy machine; deploy-ha.sh
        // drains for 8 s by default.
        Assert.True(removedAfter < TimeSpan.FromSeconds(9), $"removed after {removedAfter.TotalSeconds:F1} s");

        // Ready again: back in rotation after one good probe.
        draining.Ready = true;
        clock.Restart();
        while (draining.Hits("/whoami") == hitsWhenRemoved)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), "the replica did not come back within 15 s of being ready");
            (await client.GetAsync("whoami", Ct)).EnsureSuccessStatusCode();
            await Task.Delay(100, Ct);
        }
    }

    [Fact]
    public async Task BalancerHealthReportsEveryReplicaAndReadinessFailsWhenNoneIsHealthy()
    {
        await using var up = await FakeReplica.StartAsync("up");
        var down = FakeReplica.RefusingUrl();
        await using var lb = await Balancer.StartAsync([up.Url, down]);
        using var client = lb.Client();

        var clock = Stopwatch.StartNew();
        string health;
        do
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), "the refusing replica was never marked unhealthy");
            await Task.Delay(200, Ct);
            health = await client.GetStringAsync("lb/health", Ct);
        }
        while (!health.Contains("\"healthyDestinations\":1", StringComparison.Ordinal));
        Assert.Contains(up.Url.ToString(), health);
        Assert.Contains(down.ToString(), health);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("lb/ready", Ct)).StatusCode);

        up.Ready = false;
        clock.Restart();
        while ((await client.GetAsync("lb/ready", Ct)).StatusCode != HttpStatusCode.ServiceUnavailable)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), "/lb/ready stayed 200 with no healthy replica");
            await Task.Delay(200, Ct);
        }
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("lb/health", Ct)).StatusCode);
    }
}
