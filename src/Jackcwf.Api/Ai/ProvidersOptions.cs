namespace Jackcwf.Api.Ai;

public sealed class ProvidersOptions
{
    public const string Section = "Providers";
    public ProviderEndpointOptions OpenAI { get; set; } = new();
    public ProviderEndpointOptions Anthropic { get; set; } = new();
    public ProviderEndpointOptions Ollama { get; set; } = new();
    public DemoProviderOptions Demo { get; set; } = new();
    public int TimeoutSeconds { get; set; } = 120;
}

public sealed class ProviderEndpointOptions
{
    public string? ApiKey { get; set; }
    public string? BaseUrl { get; set; }
    public string? Models { get; set; }
}

public sealed class DemoProviderOptions
{
    public int ChunkDelayMs { get; set; } = 25;
}
