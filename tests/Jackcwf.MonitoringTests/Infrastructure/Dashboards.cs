using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Jackcwf.MonitoringTests.Infrastructure;

/// <summary>One PromQL query of a dashboard and where it comes from (for failure messages).</summary>
public sealed record DashboardQuery(string Dashboard, string Where, string Expr);

/// <summary>The Grafana dashboards under deployment/monitoring/grafana/dashboards.</summary>
public static partial class Dashboards
{
    public static IReadOnlyList<string> Files =>
        [.. Directory.EnumerateFiles(MonitoringFiles.DashboardsDirectory, "*.json").Order(StringComparer.Ordinal)];

    public static JsonObject Load(string file) =>
        JsonNode.Parse(File.ReadAllText(file))?.AsObject() ?? throw new InvalidOperationException($"{file} is not a JSON object.");

    /// <summary>Every panel, nested rows included.</summary>
    public static IEnumerable<JsonObject> Panels(JsonObject dashboard)
    {
        foreach (var panel in dashboard["panels"]?.AsArray() ?? [])
        {
            yield return panel!.AsObject();
            foreach (var inner in panel["panels"]?.AsArray() ?? [])
            {
                yield return inner!.AsObject();
            }
        }
    }

    /// <summary>Panel targets, annotation queries and the selectors inside template-variable queries, as written (with Grafana variables).</summary>
    public static IEnumerable<DashboardQuery> Queries(string file)
    {
        var dashboard = Load(file);
        var name = Path.GetFileName(file);
        foreach (var panel in Panels(dashboard))
        {
            foreach (var target in panel["targets"]?.AsArray() ?? [])
            {
                if ((string?)target!["expr"] is { Length: > 0 } expr)
                {
                    yield return new DashboardQuery(name, $"panel \"{panel["title"]}\" target {target["refId"]}", expr);
                }
            }
        }

        foreach (var annotation in dashboard["annotations"]?["list"]?.AsArray() ?? [])
        {
            if ((string?)annotation!["expr"] is { Length: > 0 } expr)
            {
                yield return new DashboardQuery(name, $"annotation \"{annotation["name"]}\"", expr);
            }
        }

        foreach (var variable in dashboard["templating"]?["list"]?.AsArray() ?? [])
        {
            var query = variable!["query"] is JsonObject q ? (string?)q["query"] : (string?)variable["query"];
            if (query is null)
            {
                continue;
            }

            // label_values(<selector>, <label>) and query_result(<expr>) wrap PromQL; a bare label_values(<label>) has none.
            var match = LabelValues().Match(query);
            var expr = match.Success ? match.Groups[1].Value : QueryResult().Match(query) is { Success: true } r ? r.Groups[1].Value : null;
            if (expr is not null)
            {
                yield return new DashboardQuery(name, $"variable ${variable["name"]}", expr);
            }
        }
    }

    /// <summary>Every <c>datasource</c> property anywhere in the dashboard, with its JSON path.</summary>
    public static IEnumerable<(string Path, JsonNode? Value)> DatasourceReferences(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject obj:
                foreach (var (key, value) in obj)
                {
                    if (key == "datasource")
                    {
                        yield return (value?.GetPath() ?? obj.GetPath() + ".datasource", value);
                    }

                    foreach (var inner in DatasourceReferences(value))
                    {
                        yield return inner;
                    }
                }

                break;
            case JsonArray array:
                foreach (var item in array)
                {
                    foreach (var inner in DatasourceReferences(item))
                    {
                        yield return inner;
                    }
                }

                break;
        }
    }

    [GeneratedRegex(@"^\s*label_values\((.+),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$", RegexOptions.Singleline)]
    private static partial Regex LabelValues();

    [GeneratedRegex(@"^\s*query_result\((.+)\)\s*$", RegexOptions.Singleline)]
    private static partial Regex QueryResult();
}
