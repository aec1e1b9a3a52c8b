using System.Text.Json.Nodes;

namespace Jackcwf.DeploymentTests.Infrastructure;

/// <summary>The Compose files of the repository, parsed.</summary>
public static class Compose
{
    public const string SingleNode = "docker-compose.yml";
    public const string HighAvailability = "deployment/docker-compose.ha.yml";

    /// <summary>Services that run the Jackcwf image (their environment must follow docs/configuration.md).</summary>
    public static readonly Dictionary<string, string[]> AppServices = new()
    {
        [SingleNode] = ["app"],
        [HighAvailability] = ["migrate", "web"],
    };

    public static JsonObject Load(string file) => YamlJson.ParseObject(Repo.Read(file.Split('/')));

    public static JsonObject Services(string file) => Load(file)["services"]!.AsObject();

    /// <summary>Environment keys of a service, from the mapping or the KEY=value list form.</summary>
    public static IEnumerable<string> EnvironmentKeys(JsonObject service) => service["environment"] switch
    {
        JsonObject map => map.Select(kv => kv.Key),
        JsonArray list => list.Select(i => ((string)i!).Split('=')[0]),
        _ => [],
    };

    public static string? Environment(JsonObject service, string key) => service["environment"] switch
    {
        JsonObject map => map[key]?.ToString(),
        JsonArray list => list.Select(i => (string)i!).FirstOrDefault(i => i.StartsWith(key + "=", StringComparison.Ordinal))?[(key.Length + 1)..],
        _ => null,
    };

    public static int Seconds(string duration)
    {
        var match = System.Text.RegularExpressions.Regex.Match(duration, @"^(?:(\d+)m)?(?:(\d+)s)?$");
        Assert.True(match.Success && duration.Length > 0, $"unsupported duration '{duration}'");
        return (match.Groups[1].Success ? int.Parse(match.Groups[1].Value) * 60 : 0) + (match.Groups[2].Success ? int.Parse(match.Groups[2].Value) : 0);
    }

    /// <summary>
    /// The Traefik labels of a service as a file-provider document (http.routers/services/...), so the
    /// labels can be validated against the same schema as dynamic.yml. Labels are case-insensitive in
    /// Traefik; the files spell them in the schema's camelCase so the check can be exact.
    /// </summary>
    public static JsonObject TraefikLabelsAsDynamicConfig(JsonObject service, string serviceName)
    {
        var root = new JsonObject();
        foreach (var label in Labels(service).Where(l => l.Key.StartsWith("traefik.http.", StringComparison.Ordinal)))
        {
            var path = label.Key["traefik.".Length..].Split('.');
            // Docker labels name one server port; the file provider lists server URLs instead.
            if (path.Length == 6 && path[3] == "loadBalancer" && path[4] == "server" && path[5] == "port")
            {
                var lb = Child(Child(Child(Child(root, "http"), "services"), path[2]), "loadBalancer");
                lb["servers"] = new JsonArray(new JsonObject { ["url"] = $"http://{serviceName}:{label.Value}" });
                continue;
            }
            var node = root;
            foreach (var segment in path[..^1]) node = Child(node, segment);
            node[path[^1]] = TypedValue(path[^1], label.Value);
        }
        return root;
    }

    public static Dictionary<string, string> Labels(JsonObject service) => service["labels"] switch
    {
        JsonArray list => list.Select(i => ((string)i!).Split('=', 2)).ToDictionary(p => p[0], p => p[1]),
        JsonObject map => map.ToDictionary(kv => kv.Key, kv => kv.Value!.ToString()),
        _ => [],
    };

    private static JsonObject Child(JsonObject parent, string name)
    {
        if (parent[name] is JsonObject existing) return existing;
        var created = new JsonObject();
        parent[name] = created;
        return created;
    }

    private static JsonNode TypedValue(string key, string value)
    {
        if (key is "middlewares" or "entryPoints") return new JsonArray(value.Split(',').Select(v => (JsonNode)JsonValue.Create(v.Trim())).ToArray());
        if (value is "true" or "false") return JsonValue.Create(value == "true");
        if (int.TryParse(value, out var number)) return JsonValue.Create(number);
        return JsonValue.Create(value);
    }
}
