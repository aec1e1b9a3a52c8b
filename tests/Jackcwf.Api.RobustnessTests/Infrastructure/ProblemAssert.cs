using System.Text.Json;

namespace Jackcwf.Api.RobustnessTests.Infrastructure;

internal static class ProblemAssert
{
    /// <summary>
    /// The response is an RFC 9457 problem with <paramref name="status"/>; when <paramref name="field"/>
    /// is given, <c>errors</c> names it. Returns the problem object.
    /// </summary>
    public static async Task<JsonElement> IsProblemAsync(HttpResponseMessage response, int status, string? field = null, string? context = null)
    {
        var body = await response.Content.ReadAsStringAsync();
        var where = $"{context ?? response.RequestMessage?.Method + " " + response.RequestMessage?.RequestUri?.PathAndQuery}: {(int)response.StatusCode} {body}";
        Assert.True((int)response.StatusCode == status, $"expected {status}, got {where}");
        Assert.True(response.Content.Headers.ContentType?.MediaType == "application/problem+json",
            $"expected application/problem+json, got {response.Content.Headers.ContentType} for {where}");
        using var doc = JsonDocument.Parse(body);
        var problem = doc.RootElement.Clone();
        Assert.True(problem.TryGetProperty("status", out var s) && s.GetInt32() == status, $"problem status differs: {where}");
        Assert.True(problem.TryGetProperty("title", out var t) && !string.IsNullOrWhiteSpace(t.GetString()), $"problem has no title: {where}");
        Assert.True(problem.TryGetProperty("type", out _), $"problem has no type: {where}");
        Assert.True(problem.TryGetProperty("code", out _), $"problem has no code: {where}");
        Assert.DoesNotContain("   at ", body, StringComparison.Ordinal);
        if (field is not null)
        {
            Assert.True(problem.TryGetProperty("errors", out var errors) && errors.ValueKind == JsonValueKind.Object,
                $"expected errors naming {field}: {where}");
            Assert.True(errors.EnumerateObject().Any(p => string.Equals(p.Name, field, StringComparison.OrdinalIgnoreCase)),
                $"expected errors naming {field}: {where}");
        }
        return problem;
    }
}
