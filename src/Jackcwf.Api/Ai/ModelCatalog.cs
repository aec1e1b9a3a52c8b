using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Ai;

public sealed record ModelInfo(
    string Id,
    string Provider,
    string Name,
    string DisplayName,
    decimal InputPricePerMillionTokens,
    decimal OutputPricePerMillionTokens,
    int? MaxOutputTokens)
{
    public decimal Cost(long inputTokens, long outputTokens) =>
        Math.Round((inputTokens * InputPricePerMillionTokens + outputTokens * OutputPricePerMillionTokens) / 1_000_000m, 8);
}

public static class Providers
{
    public const string Demo = "demo";
    public const string OpenAI = "openai";
    public const string Anthropic = "anthropic";
    public const string Ollama = "ollama";
}

/// <summary>
/// The models this instance can serve: the configured catalogue filtered to providers that have
/// credentials (or need none). Built once at start-up, so a lookup is a dictionary read.
/// </summary>
public sealed class ModelCatalog
{
    private readonly Dictionary<string, ModelInfo> _byId;
    private readonly Dictionary<string, IReadOnlyList<ModelInfo>> _fallbacks;

    public ModelCatalog(IOptions<ModelsOptions> models, IOptions<ProvidersOptions> providers)
    {
        var p = providers.Value;
        var configured = new HashSet<string>(StringComparer.Ordinal) { Providers.Demo };
        if (!string.IsNullOrWhiteSpace(p.OpenAI.ApiKey))
        {
            configured.Add(Providers.OpenAI);
        }
        if (!string.IsNullOrWhiteSpace(p.Anthropic.ApiKey))
        {
            configured.Add(Providers.Anthropic);
        }
        if (!string.IsNullOrWhiteSpace(p.Ollama.BaseUrl))
        {
            configured.Add(Providers.Ollama);
        }

        var list = new List<ModelInfo>();
        foreach (var e in models.Value.Catalog)
        {
            var slash = e.Id.IndexOf('/');
            var provider = e.Id[..slash];
            if (configured.Contains(provider) && list.All(m => m.Id != e.Id))
            {
                list.Add(new(e.Id, provider, e.Id[(slash + 1)..], e.DisplayName ?? e.Id, e.InputPricePerMillionTokens, e.OutputPricePerMillionTokens, e.MaxOutputTokens));
            }
        }
        if (list.All(m => m.Id != "demo/echo"))
        {
            list.Insert(0, new("demo/echo", Providers.Demo, "echo", "Demo echo (no key needed)", 0, 0, null));
        }
        if (configured.Contains(Providers.Ollama))
        {
            foreach (var name in (p.Ollama.Models ?? "llama3.2").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                var id = $"{Providers.Ollama}/{name}";
                if (list.All(m => m.Id != id))
                {
                    list.Add(new(id, Providers.Ollama, name, name, 0, 0, null));
                }
            }
        }
        Available = list;
        _byId = list.ToDictionary(m => m.Id, StringComparer.Ordinal);

        var fallbacks = models.Value.FallbacksByModel();
        _fallbacks = list.ToDictionary(m => m.Id, m => (IReadOnlyList<ModelInfo>)(fallbacks.TryGetValue(m.Id, out var f)
            ? f.Where(id => id != m.Id).Select(id => _byId.GetValueOrDefault(id)).OfType<ModelInfo>().Distinct().ToList()
            : []), StringComparer.Ordinal);

        var wanted = models.Value.Default;
        Default = wanted is not null && _byId.TryGetValue(wanted, out var d)
            ? d
            : list.FirstOrDefault(m => m.Provider != Providers.Demo) ?? _byId["demo/echo"];
    }

    public IReadOnlyList<ModelInfo> Available { get; }

    public ModelInfo Default { get; }

    public bool IsProviderConfigured(string provider) => Available.Any(m => m.Provider == provider);

    /// <summary>The available models to try, in order, when <paramref name="model"/> fails before its first token.</summary>
    public IReadOnlyList<ModelInfo> FallbacksOf(ModelInfo model) => _fallbacks.GetValueOrDefault(model.Id) ?? [];

    public ModelInfo? Find(string? id) => id is not null && _byId.TryGetValue(id, out var m) ? m : null;
}
