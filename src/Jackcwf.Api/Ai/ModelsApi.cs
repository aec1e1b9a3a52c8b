using Jackcwf.Api.Ai.Embeddings;
using Jackcwf.Api.Conversations;
using Microsoft.AspNetCore.Http.HttpResults;

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
        builder.Services.AddSingleton<ModelCatalog>();
        builder.Services.AddSingleton<ChatClientProvider>();
        builder.AddEmbeddings();
        // No automatic retries here: a retried generation must go through the idempotency key, not behind the user's back.
        builder.Services.AddHttpClient(ChatClientProvider.HttpClientName, c => c.Timeout = Timeout.InfiniteTimeSpan)
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler
            {
                ConnectTimeout = TimeSpan.FromSeconds(10),
                PooledConnectionLifetime = TimeSpan.FromMinutes(5),
                // Provider URLs come from operator configuration; never follow a redirect elsewhere.
                AllowAutoRedirect = false,
            });
        return builder;
    }
}
