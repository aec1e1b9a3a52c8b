using System.Net;

namespace Jackcwf.LoadBalancer.Tests;

public sealed class AffinityAndMetricsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task StickyCookieKeepsAClientOnOneReplicaWhenEnabled()
    {
        await using var a = await FakeReplica.StartAsync("a");
        await using var b = await FakeReplica.StartAsync("b");
        await using var c = await FakeReplica.StartAsync("c");
        await using var lb = await Balancer.StartAsync([a.Url, b.Url, c.Url], ["--Sticky=true", .. Balancer.WithoutHealthChecks]);
        using var client = lb.Client(new SocketsHttpHandler { UseCookies = true, CookieContainer = new CookieContainer() });

        using var first = await client.GetAsync("whoami", Ct);
        Assert.Contains(first.Headers.GetValues("Set-Cookie"), v => v.StartsWith(".Jackcwf.Affinity=", StringComparison.Ordinal));
        var owner = await first.Content.ReadAsStringAsync(Ct);
        for (var i = 0; i < 12; i++)
        {
            Assert.Equal(owner, await client.GetStringAsync("whoami", Ct));
        }

        // A fresh client (no cookie) is still balanced.
        using var other = lb.Client();
        var seen = new HashSet<string>();
        for (var i = 0; i < 6; i++)
        {
            seen.Add(await other.GetStringAsync("whoami", Ct));
        }
        Assert.Equal(3, seen.Count);
    }

    [Fact]
    public async Task StickyClientOfAStoppedReplicaIsServedByAnotherOne()
    {
        var a = await FakeReplica.StartAsync("a");
        await using var b = await FakeReplica.StartAsync("b");
        await using var lb = await Balancer.StartAsync([a.Url, b.Url], ["--Sticky=true", .. Balancer.WithoutHealthChecks]);
        // New clients until one is placed on "a" (round robin: the first or the second).
        HttpClient client;
        var tries = 0;
        while (true)
        {
            client = lb.Client(new SocketsHttpHandler { UseCookies = true, CookieContainer = new CookieContainer() });
            if (await client.GetStringAsync("whoami", Ct) == "a" || ++tries == 4)
            {
                break;
            }
            client.Dispose();
        }
        using var _ = client;
        Assert.Equal("a", await client.GetStringAsync("whoami", Ct));

        await a.StopAsync();
        await a.DisposeAsync();

        // The cookie names a dead replica and no health check has noticed yet: the retry still serves it.
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal("b", await client.GetStringAsync("whoami", Ct));
        }
    }

    [Fact]
    public async Task MetricsShowRequestsByDestinationAndStatusRetriesAndReplicaHealth()
    {
        await using var a = await FakeReplica.StartAsync("a");
        var stopped = FakeReplica.RefusingUrl();
        await using var lb = await Balancer.StartAsync([a.Url, stopped], Balancer.WithoutHealthChecks);
        using var client = lb.Client();
        for (var i = 0; i < 4; i++)
        {
            (await client.GetAsync("whoami", Ct)).EnsureSuccessStatusCode();
        }
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("missing", Ct)).StatusCode);

        using var scrape = await client.GetAsync("metrics", Ct);
        var metrics = await scrape.Content.ReadAsStringAsync(Ct);

        Assert.Equal("text/plain", scrape.Content.Headers.ContentType?.MediaType);
        Assert.Contains($"jackcwf_lb_requests_total{{otel_scope_name=\"Jackcwf.LoadBalancer\",destination=\"{a.Url}\",status_code=\"200\"}} 4", metrics);
        Assert.Contains($"destination=\"{a.Url}\",status_code=\"404\"}} 1", metrics);
        Assert.Matches($"jackcwf_lb_retries_total\\{{[^}}]*destination=\"{stopped}\",reason=\"connect_failure\"\\}} [1-9]", metrics);
        Assert.Contains($"jackcwf_lb_destination_healthy{{otel_scope_name=\"Jackcwf.LoadBalancer\",destination=\"{a.Url}\"}} 1", metrics);
        Assert.Contains("http_server_request_duration_seconds_bucket", metrics);
    }

    [Fact]
    public async Task BackendsComeFromTheLbBackendsSettingWhenNoArgumentIsGiven()
    {
        await using var a = await FakeReplica.StartAsync("a");
        await using var lb = await Balancer.StartAsync([], $"--LB_BACKENDS={a.Url}");
        using var client = lb.Client();

        Assert.Equal("a", await client.GetStringAsync("whoami", Ct));
        Assert.Contains(a.Url.ToString(), await client.GetStringAsync("lb/health", Ct));
    }
}
