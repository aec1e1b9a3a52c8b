using System.Net;
using System.Text;

namespace Jackcwf.LoadBalancer.Tests;

public sealed class RetryTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task GetToAStoppedReplicaIsRetriedOnAnotherReplica()
    {
        await using var alive = await FakeReplica.StartAsync("alive");
        await using var lb = await Balancer.StartAsync([FakeReplica.RefusingUrl(), alive.Url], Balancer.WithoutHealthChecks);
        using var client = lb.Client();

        for (var i = 0; i < 6; i++)
        {
            using var response = await client.GetAsync("whoami", Ct);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("alive", await response.Content.ReadAsStringAsync(Ct));
        }
        Assert.Equal(6, alive.Hits("/whoami"));
        var metrics = await client.GetStringAsync("metrics", Ct);
        Assert.Matches("""jackcwf_lb_retries_total\{[^}]*reason="connect_failure"[^}]*\} 3""", metrics);
    }

    [Fact]
    public async Task PostWithIdempotencyKeyToAStoppedReplicaIsRetriedWithTheSameBody()
    {
        await using var alive = await FakeReplica.StartAsync("alive");
        await using var lb = await Balancer.StartAsync([FakeReplica.RefusingUrl(), alive.Url], Balancer.WithoutHealthChecks);
        using var client = lb.Client();

        for (var i = 0; i < 4; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "echo") { Content = new StringContent($"body {i}", Encoding.UTF8) };
            request.Headers.Add("Idempotency-Key", $"key-{i}");
            using var response = await client.SendAsync(request, Ct);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal($"alive:body {i}", await response.Content.ReadAsStringAsync(Ct));
        }
        Assert.Equal(4, alive.Hits("/echo"));
    }

    [Fact]
    public async Task PostWithoutIdempotencyKeyIsNotRetriedWhenTheReplicaIsStopped()
    {
        await using var alive = await FakeReplica.StartAsync("alive");
        await using var lb = await Balancer.StartAsync([FakeReplica.RefusingUrl(), alive.Url], Balancer.WithoutHealthChecks);
        using var client = lb.Client();

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 4; i++)
        {
            using var response = await client.PostAsync("echo", new StringContent("no key"), Ct);
            statuses.Add(response.StatusCode);
        }

        // Round robin over two replicas: half the POSTs met the stopped one and the client sees that.
        Assert.Equal(2, statuses.Count(s => s == HttpStatusCode.BadGateway));
        Assert.Equal(2, statuses.Count(s => s == HttpStatusCode.OK));
        Assert.Equal(2, alive.Hits("/echo"));
    }

    [Fact]
    public async Task PostWithoutIdempotencyKeyReachesAReplicaAtMostOnceWhenItDropsTheConnection()
    {
        await using var dropping = await FakeReplica.StartAsync("dropping");
        await using var other = await FakeReplica.StartAsync("other");
        await using var lb = await Balancer.StartAsync([dropping.Url, other.Url], Balancer.WithoutHealthChecks);
        using var client = lb.Client();

        for (var i = 0; i < 2; i++)
        {
            using var response = await client.PostAsync("reset", new StringContent("once"), Ct);
            Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        }
        // Each POST was received exactly once, by one replica each (round robin), never re-sent.
        Assert.Equal([1, 1], new[] { dropping.Hits("/reset"), other.Hits("/reset") });
    }

    [Fact]
    public async Task DrainingReplicaAnswering503IsRetriedForGetAndKeyedPostButNotForPlainPost()
    {
        await using var draining = await FakeReplica.StartAsync("draining");
        await using var alive = await FakeReplica.StartAsync("alive");
        draining.RefuseWith503 = true;
        await using var lb = await Balancer.StartAsync([draining.Url, alive.Url], Balancer.WithoutHealthChecks);
        using var client = lb.Client();

        for (var i = 0; i < 4; i++)
        {
            using var get = await client.GetAsync("whoami", Ct);
            Assert.Equal(HttpStatusCode.OK, get.StatusCode);
            Assert.Equal("alive", await get.Content.ReadAsStringAsync(Ct));

            using var keyed = new HttpRequestMessage(HttpMethod.Post, "echo") { Content = new StringContent("keyed") };
            keyed.Headers.Add("Idempotency-Key", $"k{i}");
            using var keyedResponse = await client.SendAsync(keyed, Ct);
            Assert.Equal("alive:keyed", await keyedResponse.Content.ReadAsStringAsync(Ct));
        }

        var plain = new List<HttpStatusCode>();
        for (var i = 0; i < 4; i++)
        {
            using var response = await client.PostAsync("echo", new StringContent("plain"), Ct);
            plain.Add(response.StatusCode);
        }
        Assert.Equal(2, plain.Count(s => s == HttpStatusCode.ServiceUnavailable));
        var metrics = await client.GetStringAsync("metrics", Ct);
        Assert.Matches("""jackcwf_lb_retries_total\{[^}]*reason="unavailable"[^}]*\} 4""", metrics);
    }

    [Fact]
    public async Task WhenEveryReplicaRefusesTheClientGetsTheLastAnswer()
    {
        await using var a = await FakeReplica.StartAsync("a");
        await using var b = await FakeReplica.StartAsync("b");
        a.RefuseWith503 = b.RefuseWith503 = true;
        await using var lb = await Balancer.StartAsync([a.Url, b.Url], Balancer.WithoutHealthChecks);
        using var client = lb.Client();

        using var response = await client.GetAsync("whoami", Ct);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.EndsWith("is draining", await response.Content.ReadAsStringAsync(Ct));
        Assert.Equal(2, a.Hits("/whoami") + b.Hits("/whoami"));
    }

    [Fact]
    public async Task ReplicaDyingMidResponseIsNotRetried()
    {
        await using var a = await FakeReplica.StartAsync("a");
        await using var b = await FakeReplica.StartAsync("b");
        await using var lb = await Balancer.StartAsync([a.Url, b.Url], Balancer.WithoutHealthChecks);
        using var client = lb.Client();

        // The client got the status line and some bytes, then the stream broke: it must see the break.
        await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            using var response = await client.GetAsync("die-mid-response", HttpCompletionOption.ResponseHeadersRead, Ct);
            await response.Content.ReadAsStringAsync(Ct);
        });

        Assert.Equal(1, a.Hits("/die-mid-response") + b.Hits("/die-mid-response"));
    }
}
