using System.Diagnostics;
using System.Net;
using Jackcwf.Api.RobustnessTests.Infrastructure;

namespace Jackcwf.Api.RobustnessTests;

/// <summary>
/// The request log stays off the hot path: failed requests are always logged, successful ones only
/// when the operator turns the access log on (ACCESS_LOG=true) or asks for Debug.
/// </summary>
public sealed class RequestLogTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task By_default_failed_requests_are_logged_and_successful_ones_are_not()
    {
        await using var api = await Service.StartAsync();
        using var user = await TestUser.SignUpAsync(api);
        using (var ok = await user.Client.GetAsync("api/me", Ct))
        using (var missing = await user.Client.GetAsync($"api/conversations/{Guid.NewGuid()}", Ct))
        {
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        }

        await WaitForLogAsync(api, "/api/conversations/", "responded 404");
        Assert.DoesNotContain(api.LogLines, l => l.Contains("GET /api/me responded", StringComparison.Ordinal));
    }

    [Fact]
    public async Task With_the_access_log_on_every_request_is_logged()
    {
        await using var api = await Service.StartAsync(new Dictionary<string, string?> { ["ACCESS_LOG"] = "true" });
        using var user = await TestUser.SignUpAsync(api);
        using var ok = await user.Client.GetAsync("api/me", Ct);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);

        await WaitForLogAsync(api, "GET /api/me", "responded 200");
    }

    private static async Task WaitForLogAsync(ApiProcess api, string first, string second)
    {
        var clock = Stopwatch.StartNew();
        while (!api.LogLines.Any(l => l.Contains(first, StringComparison.Ordinal) && l.Contains(second, StringComparison.Ordinal)))
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"no request log line with \"{first}\" and \"{second}\":\n{api.Logs}");
            await Task.Delay(50, Ct);
        }
    }
}
