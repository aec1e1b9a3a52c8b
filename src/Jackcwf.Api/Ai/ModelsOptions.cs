using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Ai;

public sealed class ModelsOptions
{
    public const string Section = "Models";
    public string? Default { get; set; }
    public List<ModelEntry> Catalog { get; set; } = [];
    /// <summary><c>MODEL_FALLBACKS</c>: <c>model=fallback1,fallback2;model2=…</c>, added to each model's <see cref="ModelEntry.Fallbacks"/>.</summary>
    public string? FallbackMap { get; set; }

    /// <summary>Fallbacks per model id from the catalogue and <see cref="FallbackMap"/> (the map's come first).</summary>
    public Dictionary<string, List<string>> FallbacksByModel()
    {
        var result = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var rule in (FallbackMap ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = rule.IndexOf('=');
            if (eq > 0)
            {
                result[rule[..eq].Trim()] = [.. rule[(eq + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
            }
        }
        foreach (var m in Catalog.Where(m => m.Fallbacks.Count > 0))
        {
            var list = result.TryGetValue(m.Id, out var l) ? l : result[m.Id] = [];
            list.AddRange(m.Fallbacks.Where(f => !list.Contains(f)));
        }
        return result;
    }
}

public sealed class ModelEntry
{
    public string Id { get; set; } = "";
    /// <summary>Models tried in order when this one fails before its first token or its circuit is open.</summary>
    public List<string> Fallbacks { get; set; } = [];
    public string? DisplayName { get; set; }
    public decimal InputPricePerMillionTokens { get; set; }
    public decimal OutputPricePerMillionTokens { get; set; }
    public int? MaxOutputTokens { get; set; }
}

/// <summary>Cross-field rules the per-variable parsing cannot see; messages name the variable.</summary>
internal sealed class ValidateModelsOptions : IValidateOptions<ModelsOptions>
{
    public ValidateOptionsResult Validate(string? name, ModelsOptions options)
    {
        var errors = new List<string>();
        foreach (var m in options.Catalog)
        {
            if (m.Id.Split('/') is not [{ Length: > 0 }, { Length: > 0 }])
            {
                errors.Add($"Models:Catalog entry \"{m.Id}\" must be named provider/model.");
            }
            if (m.InputPricePerMillionTokens < 0 || m.OutputPricePerMillionTokens < 0)
            {
                errors.Add($"Models:Catalog entry \"{m.Id}\" has a negative price.");
            }
        }
        if (options.FallbackMap is { Length: > 0 } map
            && map.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault(r => r.IndexOf('=') <= 0) is { } bad)
        {
            errors.Add($"MODEL_FALLBACKS rule \"{bad}\" must be model=fallback1,fallback2 (rules separated by ';').");
        }
        foreach (var (model, fallbacks) in options.FallbacksByModel())
        {
            foreach (var f in fallbacks.Prepend(model).Where(f => f.Split('/') is not [{ Length: > 0 }, { Length: > 0 }]))
            {
                errors.Add($"Fallback rule for \"{model}\": \"{f}\" must be named provider/model.");
            }
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
