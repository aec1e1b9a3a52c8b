namespace Jackcwf.Api.RobustnessTests;

/// <summary>
/// A bad value that comes from configuration rather than from the seed's environment variable (here
/// <c>Limits__MaxMessageChars</c>, the form appsettings.json and Kubernetes ConfigMaps use) stops the
/// service like a bad variable does: exit code 2 and a message naming the setting and its variable.
/// </summary>
public sealed class SettingsStartupTests
{
    [Fact]
    public async Task A_bad_configuration_value_stops_the_service_naming_the_setting_and_its_variable()
    {
        var result = await ApiProcess.RunCommandAsync([], new ApiProcessOptions
        {
            Environment = new Dictionary<string, string?>
            {
                ["Limits__MaxMessageChars"] = "0",
                ["DATABASE_URL"] = null,
                ["REDIS_URL"] = null,
                ["ENABLE_MONITORING"] = "false",
                ["LOG_FORMAT"] = "text",
            },
        }, TimeSpan.FromMinutes(3), TestContext.Current.CancellationToken);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("Configuration error: Limits:MaxMessageChars (MAX_MESSAGE_CHARS) must be a whole number between 1 and 10000000", result.Output);
        Assert.DoesNotContain("is listening on", result.Output);
    }
}
