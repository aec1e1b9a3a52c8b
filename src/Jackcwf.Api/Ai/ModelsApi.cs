using Jackcwf.Api.Ai.Embeddings;
using Jackcwf.Api.Ai.Pipeline;
using Jackcwf.Api.Configuration;
using Jackcwf.Api.Conversations;
using Jackcwf.Api.Telemetry;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Ai;

public static class ModelsApi
{
    public static IEndpointRouteBuilder MapModelsApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/models", ListModels).WithTags("Models").WithName("ListModels")
            .WithSummary("Models this server can use, with prices per million tokens.").RequireAuthorization();
        return app;
    }

    public static Ok<ModelDto[]> ListModels(ModelCatalog catalog) =>
        TypedResults.Ok(catalog.Available.Select(m => new ModelDto(m.Id, m.Provider, m.DisplayName,
            m.InputPricePerMillionTokens, m.OutputPricePerMillionTokens, m.Id == catalog.Default.Id)).ToArray());
}

public static class AiExtensions
{
    public static IHostApplicationBuilder AddAi(this IHostApplicationBuilder builder)
    {
        var s = builder.Services;
        s.AddSettings<ProvidersOptions>(ProvidersOptions.Section);
        s.AddSettings<ModelsOptions>(ModelsOptions.Section);
        s.AddSingleton<IValidateOptions<ModelsOptions>, ValidateModelsOptions>();
        s.AddSettings<ResilienceOptions>(ResilienceOptions.Section).ValidateDataAnnotations();
        s.AddSettings<ResponseCacheOptions>(ResponseCacheOptions.Section);
        s.AddSingleton<IValidateOptions<ResponseCacheOptions>, ValidateResponseCacheOptions>();
        s.AddSingleton<ModelCatalog>();
        s.AddSingleton<ChatClientProvider>();
        // The /v1 chat gateway's one service (OpenAiCompat/): checks, limits, then the call through this pipeline.
        s.AddSingleton<OpenAiCompat.GatewayCalls>();
        // Built at start-up (the generation runner needs it). The pipeline's series exist from then on
        // at 0: a closed circuit per configured endpoint, no fallback yet per configured pair, no response
        // cache hit, miss or saved token yet when the cache is on. Alerts
        // use rate() and absent() on them, which a series born with its first event would defeat.
        s.AddSingleton(sp =>
        {
            var breakers = new ProviderCircuitBreakers(sp.GetRequiredService<IOptions<ResilienceOptions>>().Value);
            var catalog = sp.GetRequiredService<ModelCatalog>();
            var providers = sp.GetRequiredService<IOptions<ProvidersOptions>>().Value;
            var metrics = sp.GetRequiredService<JackcwfMetrics>();
            foreach (var model in catalog.Available)
            {
                breakers.For(ChatClientProvider.EndpointOf(providers, model.Provider));
                foreach (var fallback in catalog.FallbacksOf(model))
                {
                    metrics.Fallback(model.Id, fallback.Id, 0);
                }
            }
            if (sp.GetRequiredService<IOptions<ResponseCacheOptions>>().Value.Mode != ResponseCacheOptions.Off)
            {
                metrics.ResponseCacheEnabled();
            }
            metrics.CircuitStateSource = breakers.States;
            return breakers;
        });
        // The response cache: HybridCache in memory, with Redis as its shared level when REDIS_URL is set
        // (AddBackplane registers it), so every replica answers from what any replica stored. Its memory level is
        // bounded in bytes (HybridCache gives each entry its payload's size when the memory cache has a limit): without
        // one it kept every answer for the cache's time to live, at 500 answers a second gigabytes per replica.
        s.AddMemoryCache();
        s.AddOptions<Microsoft.Extensions.Caching.Memory.MemoryCacheOptions>().Configure<IOptions<ResponseCacheOptions>>((o, cache) =>
            o.SizeLimit = cache.Value.LocalMegabytes * 1024L * 1024);
        s.AddHybridCache()
            .AddSerializer(new JsonHybridSerializer<CachedAnswer>(ResponseCacheJsonContext.Default.CachedAnswer))
            .AddSerializer(new JsonHybridSerializer<SemanticIndex>(ResponseCacheJsonContext.Default.SemanticIndex));
        s.AddSingleton<IResponseCacheStore, HybridResponseCacheStore>();
        builder.AddEmbeddings();
        // The HttpClient never retries: retries are the pipeline's, before the first token only.
        s.AddHttpClient(ChatClientProvider.HttpClientName, c => c.Timeout = Timeout.InfiniteTimeSpan)
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler
            {
                ConnectTimeout = TimeSpan.FromSeconds(10),
                PooledConnectionLifetime = TimeSpan.FromMinutes(5),
                // Provider URLs come from operator configuration; never follow a redirect elsewhere.
                AllowAutoRedirect = false,
            })
            .AddHttpMessageHandler(() => new ProviderAnswered.Handler())
            .AddHttpMessageHandler(() => new RequestBodyRelease())
            // No per-call log scope and "Sending HTTP request" lines from the client factory's logging handlers:
            // a provider call is logged (and measured) by the pipeline already, and those cost every call.
            .RemoveAllLoggers();
        return builder;
    }
}
