using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;

namespace Jackcwf.HaTests;

public sealed class AuthAcrossReplicasTests(HaFixture fixture, ITestOutputHelper output)
{
    [Fact]
    public async Task Token_and_cookie_from_one_replica_work_on_every_replica_across_two_rolling_restarts()
    {
        await fixture.EnsureWholeAsync();
        var cluster = fixture.Cluster;
        using var first = cluster.CreateClient(cluster.Replicas[0].BaseUrl);
        var (_, email, password) = await HaClient.RegisterAsync(first);
        var token = await HaClient.LoginAsync(first, email, password);
        var cookies = new CookieContainer();
        using var cookieLogin = new HttpClient(new SocketsHttpHandler { CookieContainer = cookies }) { BaseAddress = cluster.Replicas[0].BaseUrl };
        (await cookieLogin.PostAsJsonAsync("api/auth/login?useCookies=true", new { email, password })).EnsureSuccessStatusCode();

        int ok = 0, authFailures = 0, unavailable = 0;
        var failures = new List<string>();
        using var stop = new CancellationTokenSource();
        using var direct = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        using var withCookies = new HttpClient(new SocketsHttpHandler { CookieContainer = cookies }) { Timeout = TimeSpan.FromSeconds(10) };

        async Task ProbeAsync(Uri baseUrl, bool cookie)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(baseUrl, "api/me"));
            if (!cookie)
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            }
            try
            {
                using var response = await (cookie ? withCookies : direct).SendAsync(request);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    Interlocked.Increment(ref ok);
                }
                else if (response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
                {
                    Interlocked.Increment(ref authFailures);
                    lock (failures)
                    {
                        failures.Add($"{baseUrl} ({(cookie ? "cookie" : "token")}): {(int)response.StatusCode}");
                    }
                }
                else
                {
                    Interlocked.Increment(ref unavailable);
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                // A replica that is restarting refuses connections: that is not an authentication failure.
                Interlocked.Increment(ref unavailable);
            }
        }

        var targets = cluster.Replicas.Select(r => r.BaseUrl).Append(cluster.BaseUrl).ToList();
        var prober = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                await Task.WhenAll(targets.SelectMany(t => new[] { ProbeAsync(t, false), ProbeAsync(t, true) }));
                await Task.Delay(200);
            }
        });

        var restarts = new List<TimeSpan>();
        for (var round = 1; round <= 2; round++)
        {
            restarts.AddRange(await cluster.RollingRestartAsync(output.WriteLine));
            foreach (var replica in cluster.Replicas)
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(replica.BaseUrl, "api/me"));
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
                using var me = await direct.SendAsync(request);
                Assert.Equal(HttpStatusCode.OK, me.StatusCode);
            }
        }
        await stop.CancelAsync();
        await prober;

        Figures.Report(output, "Sign-in on one replica, used on all, across two rolling restarts", [
            $"6 restarts ({string.Join(", ", restarts.Select(r => $"{r.TotalSeconds:F1} s"))}); /api/me probed every 200 ms on each replica and the balancer, with the token and the cookie",
            $"requests: {ok + authFailures + unavailable}, authenticated: {ok}, authentication failures: {authFailures}, unavailable (replica restarting, not auth): {unavailable}",
        ]);
        Assert.True(authFailures == 0, string.Join("\n", failures.Take(10)));
        Assert.True(ok > 100, $"only {ok} authenticated requests");
    }
}
