using System.Text.Json;

namespace Jackcwf.Api.RobustnessTests.Infrastructure;

internal static class LogAssert
{
    /// <summary>
    /// The captured lines logged at Error or Critical, or mentioning an unhandled exception, each
    /// shortened to its message and the first line of its exception.
    /// </summary>
    public static List<string> ErrorLines(ApiProcess api) =>
        [.. api.LogLines
            .Where(l => l.Contains("\"LogLevel\":\"Error\"", StringComparison.Ordinal)
                || l.Contains("\"LogLevel\":\"Critical\"", StringComparison.Ordinal)
                || l.Contains("Unhandled exception", StringComparison.OrdinalIgnoreCase))
            .Select(Summarize)];

    private static string Summarize(string line)
    {
        try
        {
            using var json = JsonDocument.Parse(line);
            var root = json.RootElement;
            var message = root.TryGetProperty("Message", out var m) ? m.GetString() : line;
            var exception = root.TryGetProperty("Exception", out var e) ? e.GetString()?.Split('\n')[0] : null;
            return exception is null ? message ?? line : $"{message} | {exception}";
        }
        catch (JsonException)
        {
            return line.Length <= 400 ? line : line[..400];
        }
    }
}
