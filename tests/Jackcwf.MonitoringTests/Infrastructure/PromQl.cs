using System.Text.RegularExpressions;

namespace Jackcwf.MonitoringTests.Infrastructure;

/// <summary>Just enough PromQL lexing to list the metric names an expression reads.</summary>
public static partial class PromQl
{
    private static readonly HashSet<string> Keywords = new(StringComparer.OrdinalIgnoreCase)
    {
        "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "inf", "nan",
    };

    /// <summary>
    /// Metric names selected by <paramref name="expr"/>: identifiers that are not functions,
    /// aggregations, keywords, label names (inside braces or grouping clauses) or string contents.
    /// </summary>
    public static IReadOnlySet<string> MetricNames(string expr)
    {
        var text = StringLiteral().Replace(expr, "\"\"");
        text = Comment().Replace(text, " ");
        text = Matchers().Replace(text, "{}");
        text = RangeOrSubquery().Replace(text, " ");
        text = Grouping().Replace(text, " ");
        text = Offset().Replace(text, " ");
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (Match m in Identifier().Matches(text))
        {
            var name = m.Groups[1].Value;
            if (Keywords.Contains(name) || m.Groups[2].Success)
            {
                continue;
            }

            names.Add(name);
        }

        return names;
    }

    /// <summary>
    /// A Grafana query made plain PromQL: template variables replaced by literals that keep the
    /// expression meaningful (<c>$job</c> → jackcwf, <c>$instance</c> → .*, intervals → <paramref name="interval"/>).
    /// </summary>
    public static string FromGrafana(string expr, string interval = "5m") =>
        expr.Replace("$__rate_interval", interval, StringComparison.Ordinal)
            .Replace("$__interval", interval, StringComparison.Ordinal)
            .Replace("$__range", "1h", StringComparison.Ordinal)
            .Replace("$job", "jackcwf", StringComparison.Ordinal)
            .Replace("$instance", ".*", StringComparison.Ordinal);

    [GeneratedRegex("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")]
    private static partial Regex StringLiteral();

    [GeneratedRegex("#[^\n]*")]
    private static partial Regex Comment();

    [GeneratedRegex(@"\{[^}]*\}")]
    private static partial Regex Matchers();

    [GeneratedRegex(@"\[[^\]]*\]")]
    private static partial Regex RangeOrSubquery();

    [GeneratedRegex(@"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", RegexOptions.IgnoreCase)]
    private static partial Regex Grouping();

    [GeneratedRegex(@"\boffset\s+-?[0-9a-z]+|@\s*(start\(\)|end\(\)|[0-9.]+)", RegexOptions.IgnoreCase)]
    private static partial Regex Offset();

    // Group 2 marks a function call or aggregation (the name is followed by "(").
    [GeneratedRegex(@"(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")]
    private static partial Regex Identifier();
}
