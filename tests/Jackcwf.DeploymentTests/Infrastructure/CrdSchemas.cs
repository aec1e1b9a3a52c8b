using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;

namespace Jackcwf.DeploymentTests.Infrastructure;

/// <summary>
/// Strict validation of custom resources against their CustomResourceDefinitions (the vendored
/// CloudNativePG and Barman Cloud CRDs). The storage version's <c>openAPIV3Schema</c> is turned into
/// a JSON Schema where every object with <c>properties</c> (and no
/// <c>x-kubernetes-preserve-unknown-fields</c>) rejects other fields, and <c>int-or-string</c> and
/// <c>nullable</c> mean what the API server makes of them. CEL rules (<c>x-kubernetes-validations</c>)
/// are not evaluated.
/// </summary>
public static class CrdSchemas
{
    public static readonly IReadOnlyDictionary<string, string> Files = new Dictionary<string, string>
    {
        ["postgresql.cnpg.io/v1/Cluster"] = "cloudnative-pg/postgresql.cnpg.io_clusters.yaml",
        ["postgresql.cnpg.io/v1/ScheduledBackup"] = "cloudnative-pg/postgresql.cnpg.io_scheduledbackups.yaml",
        ["barmancloud.cnpg.io/v1/ObjectStore"] = "cloudnative-pg/barmancloud.cnpg.io_objectstores.yaml",
    };

    private static readonly Dictionary<string, JsonSchema> Cache = [];

    /// <summary>"apiVersion/kind" of the objects in <paramref name="yaml"/> this class validates, with their errors.</summary>
    public static List<(string Object, IReadOnlyList<string> Errors)> Validate(string yaml)
    {
        var results = new List<(string, IReadOnlyList<string>)>();
        foreach (var document in YamlJson.ParseAll(yaml).OfType<JsonObject>())
        {
            var key = $"{document["apiVersion"]}/{document["kind"]}";
            if (!Files.ContainsKey(key)) continue;
            results.Add(($"{key} {document["metadata"]?["name"]}", Errors(SchemaFor(key), document)));
        }
        return results;
    }

    private static IReadOnlyList<string> Errors(JsonSchema schema, JsonNode instance)
    {
        using var document = JsonDocument.Parse(instance.ToJsonString());
        var result = schema.Evaluate(document.RootElement, new EvaluationOptions { OutputFormat = OutputFormat.List });
        if (result.IsValid) return [];
        var errors = (result.Details ?? []).Where(d => d.Errors is { Count: > 0 })
            .SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Value}")).Distinct().ToList();
        return errors.Count > 0 ? errors : ["invalid (no details reported)"];
    }

    private static JsonSchema SchemaFor(string key)
    {
        lock (Cache)
        {
            if (Cache.TryGetValue(key, out var cached)) return cached;
            var crd = YamlJson.ParseObject(File.ReadAllText(Repo.SchemaPath(Files[key])));
            var version = key.Split('/')[1];
            var schema = crd["spec"]!["versions"]!.AsArray().Single(v => (string?)v!["name"] == version)!["schema"]!["openAPIV3Schema"]!.DeepClone().AsObject();
            Strict(schema);
            schema["$schema"] = "https://json-schema.org/draft/2020-12/schema";
            var parsed = JsonSchema.FromText(schema.ToJsonString(), baseUri: new Uri($"https://jackcwf.test/{Guid.NewGuid():N}/{key}"));
            Cache[key] = parsed;
            return parsed;
        }
    }

    private static void Strict(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject map:
                if (map["x-kubernetes-int-or-string"] is JsonValue intOrString && (bool)intOrString)
                {
                    map.Remove("type");
                    map["anyOf"] = new JsonArray(new JsonObject { ["type"] = "integer" }, new JsonObject { ["type"] = "string" });
                }
                if (map["nullable"] is JsonValue nullable && (bool)nullable && map["type"] is JsonValue type)
                {
                    map["type"] = new JsonArray((string)type!, "null");
                }
                var preserve = map["x-kubernetes-preserve-unknown-fields"] is JsonValue p && (bool)p;
                if (map["properties"] is JsonObject && !map.ContainsKey("additionalProperties") && !preserve)
                {
                    map["additionalProperties"] = false;
                }
                // Kubernetes formats (int32, int64, quantity, date-time...) are not asserted, and the
                // extension keywords (CEL rules, list types) are not JSON Schema: drop them once used.
                map.Remove("format");
                map.Remove("nullable");
                foreach (var extension in map.Select(kv => kv.Key).Where(k => k.StartsWith("x-kubernetes-", StringComparison.Ordinal)).ToList())
                {
                    map.Remove(extension);
                }
                foreach (var (name, child) in map.ToList())
                {
                    // Field names under "properties" are data, not keywords.
                    if (name == "properties" && child is JsonObject properties)
                    {
                        foreach (var property in properties) Strict(property.Value);
                    }
                    else if (name != "properties")
                    {
                        Strict(child);
                    }
                }
                break;
            case JsonArray list:
                foreach (var item in list) Strict(item);
                break;
        }
    }
}
