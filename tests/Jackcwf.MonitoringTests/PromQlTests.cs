using Jackcwf.MonitoringTests.Infrastructure;

namespace Jackcwf.MonitoringTests;

/// <summary>The metric-name extraction that the cross-checks rely on.</summary>
public sealed class PromQlTests
{
    [Theory]
    [InlineData("up{job=\"jackcwf\"} == 0", "up")]
    [InlineData("sum by (job, le) (rate(http_server_request_duration_seconds_bucket{job=\"jackcwf\", http_route!~\".*/messages\"}[5m]))", "http_server_request_duration_seconds_bucket")]
    [InlineData("a / on (job, instance) group_left (version) b > 0.9", "a b")]
    [InlineData("label_replace(max by (dependency) (x{dependency=~\"provider_.+\"}) == 0, \"provider\", \"$1\", \"dependency\", \"provider_(.+)\")", "x")]
    [InlineData("jackcwf:llm_cost_usd:rate1h > 3 * avg_over_time(jackcwf:llm_cost_usd:rate1h[1d]) and jackcwf:llm_cost_usd:rate1h * 3600 > 1", "jackcwf:llm_cost_usd:rate1h")]
    [InlineData("vector(1)", "")]
    [InlineData("sum(increase(c_total[1h] offset 1d)) > 1e3 or absent(d)", "c_total d")]
    [InlineData("time() - start_seconds", "start_seconds")]
    public void ListsTheMetricNamesAnExpressionReads(string expr, string expected)
    {
        var names = PromQl.MetricNames(expr).Order(StringComparer.Ordinal);

        Assert.Equal(expected.Split(' ', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal), names);
    }

    [Fact]
    public void GrafanaVariablesBecomeLiterals()
    {
        var expr = PromQl.FromGrafana("rate(x{job=\"$job\", instance=~\"$instance\"}[$__rate_interval])");

        Assert.Equal("rate(x{job=\"jackcwf\", instance=~\".*\"}[5m])", expr);
    }
}
