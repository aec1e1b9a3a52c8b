using Microsoft.Extensions.Options;

namespace Jackcwf.LoadBalancer.Tests;

/// <summary>A bad balancer setting stops start-up with a message naming it, as the service's settings do.</summary>
public sealed class SettingsTests
{
    [Theory]
    [InlineData("--LoadBalancer:MaxAttempts=0", "LoadBalancer:MaxAttempts must be between 1 and 10")]
    [InlineData("--LoadBalancer:MaxRetryBodyBytes=-1", "LoadBalancer:MaxRetryBodyBytes must be between")]
    public async Task A_bad_setting_stops_start_up_naming_it(string setting, string named)
    {
        var refusal = await Assert.ThrowsAsync<OptionsValidationException>(() => Balancer.StartAsync([new Uri("http://127.0.0.1:9/")], setting));
        Assert.Contains(refusal.Failures, f => f.Contains(named, StringComparison.Ordinal));
    }
}
