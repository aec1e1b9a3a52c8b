using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;

namespace Jackcwf.DeploymentTests.Infrastructure;

/// <summary>Draft-07 JSON Schema validation (JsonSchema.Net) of YAML files.</summary>
public sealed class SchemaValidator
{
    private static readonly Dictionary<string, SchemaValidator> Cache = [];
    private readonly JsonSchema schema;

    private SchemaValidator(string schemaFile)
    {
        var node = JsonNode.Parse(File.ReadAllText(Repo.SchemaPath(schemaFile)))!.AsObject();
        // compose-spec.json declares "https://json-schema.org/draft-07/schema" (https, no '#'), a URI
        // that validators do not recognise as draft-07; use the canonical draft-07 identifier instead.
        node["$schema"] = "http://json-schema.org/draft-07/schema#";
        // Each test builds its own registry entry: a unique base URI avoids "already registered" clashes.
        schema = JsonSchema.FromText(node.ToJsonString(), baseUri: new Uri($"https://jackcwf.test/{Guid.NewGuid():N}/{schemaFile}"));
    }

    public static SchemaValidator For(string schemaFile)
    {
        lock (Cache)
        {
            if (!Cache.TryGetValue(schemaFile, out var validator))
            {
                validator = new SchemaValidator(schemaFile);
                Cache[schemaFile] = validator;
            }
            return validator;
        }
    }

    /// <summary>The validation errors as "instance path: message" lines; empty when valid.</summary>
    public IReadOnlyList<string> Validate(JsonNode? instance)
    {
        using var document = JsonDocument.Parse(instance?.ToJsonString() ?? "null");
        var result = schema.Evaluate(document.RootElement, new EvaluationOptions { OutputFormat = OutputFormat.List });
        if (result.IsValid) return [];
        var errors = (result.Details ?? [])
            .Where(d => d.Errors is { Count: > 0 })
            .SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Value} ({e.Key})"))
            .Distinct()
            .ToList();
        return errors.Count > 0 ? errors : ["invalid (no details reported)"];
    }
}
