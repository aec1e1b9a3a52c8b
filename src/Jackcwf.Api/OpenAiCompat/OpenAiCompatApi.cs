using System.Diagnostics;
using System.Security.Claims;
using System.Text;
using System.Text.Json;
using Jackcwf.Api.Accounts;
using Jackcwf.Api.Ai;
using Jackcwf.Api.Ai.Pipeline;
using Jackcwf.Api.ErrorHandling;
using Jackcwf.Api.Limits;
using Jackcwf.Api.Telemetry;
using Jackcwf.Api.Usage;
using Jackcwf.Api.Web;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.AI;

namespace Jackcwf.Api.OpenAiCompat;

/// <summary>
/// The OpenAI-compatible gateway: <c>POST /v1/chat/completions</c> (streamed and not) and
/// <c>GET /v1/models</c>, routed to the configured providers through the same chat pipeline,
/// with limits, usage and cost recorded per key and user. Stateless: nothing is stored but the ledger.
/// </summary>
/// <summary>What the /v1 chat handler uses, bound with <c>[AsParameters]</c>.</summary>
public sealed record GatewayServices(HttpContext Http, ClaimsPrincipal User, [FromServices] GatewayCalls Calls);

public static class OpenAiCompatApi
{
    public static IEndpointRouteBuilder MapOpenAiCompatApi(this IEndpointRouteBuilder app)
    {
        var v1 = app.MapGroup("/v1").WithTags("OpenAI-compatible gateway").RequireAuthorization();
        v1.MapGet("/models", ListModels).WithName("OpenAiListModels").WithSummary("The available models in OpenAI's list shape.");
        v1.MapPost("/chat/completions", ChatCompletionsAsync).WithName("OpenAiChatCompletions")
            .WithSummary("OpenAI chat completions, streamed (stream: true) or not; errors use OpenAI's error shape.")
            .Accepts<ChatCompletionRequest>("application/json")
            .WithMetadata(RateCheckedAtAdmission.Instance);
        v1.MapEmbeddingsAndModelLookup();
        return app;
    }

    public static IResult ListModels(ModelCatalog catalog, Ai.Embeddings.EmbeddingModels embeddings)
    {
        var created = new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeSeconds();
        var list = new ModelListDto("list", catalog.Available.Select(m => new ModelEntryDto(m.Id, "model", created, m.Provider))
            .Concat(EmbeddingsApi.EmbeddingModelEntries(embeddings)).ToList());
        return Results.Json(list, OpenAiJsonContext.Default.ModelListDto);
    }

    public static async Task<Results<GatewayCallResult, OpenAiErrorResult>> ChatCompletionsAsync([AsParameters] GatewayServices services)
    {
        var accepted = Stopwatch.GetTimestamp();
        var http = services.Http;
        var (request, invalid) = await TryReadBodyAsync(http, OpenAiJsonContext.Default.ChatCompletionRequest);
        if (invalid is not null)
        {
            return await services.Calls.InvalidAsync(http, invalid);
        }
        return await services.Calls.StartAsync(request!, services.User, CacheDirectives.FromHeader(http.Request.Headers.CacheControl), accepted, http.Response);
    }

    /// <summary>The caller lost access mid-call: a final error event on a started stream, else a 401.</summary>
    internal static Task RevokedAsync(HttpContext http)
    {
        const string code = "access_revoked";
        const string message = "This account was disabled or this API key was revoked while the call ran.";
        http.Items[WebExtensions.ProblemCodeItem] = code;
        return http.Response.HasStarted
            ? WriteDataAsync(http, JsonSerializer.Serialize(OpenAiError.Create(message, OpenAiError.TypeFor(401), code), OpenAiJsonContext.Default.OpenAiErrorResponse))
            : ErrorAsync(http, 401, code, message, null);
    }

    /// <summary>The JSON body as <typeparamref name="T"/>, or null after answering OpenAI's 400 for a body that is not one.</summary>
    internal static async Task<T?> ReadBodyAsync<T>(HttpContext http, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type) where T : class
    {
        var (request, invalid) = await TryReadBodyAsync(http, type);
        if (invalid is not null)
        {
            await invalid.ExecuteAsync(http);
        }
        return request;
    }

    /// <summary>The JSON body as <typeparamref name="T"/>, or OpenAI's 400 for a body that is not one.</summary>
    internal static async Task<(T? Request, OpenAiErrorResult? Invalid)> TryReadBodyAsync<T>(HttpContext http, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type)
        where T : class
    {
        T? request;
        try
        {
            request = await JsonSerializer.DeserializeAsync(http.Request.Body, type, http.RequestAborted);
        }
        catch (JsonException e)
        {
            return (null, new OpenAiErrorResult(400, "invalid_json", $"We could not parse the JSON body of your request ({e.Path ?? "$"}).", e.Path?.TrimStart('$', '.')));
        }
        return request is null ? (null, new OpenAiErrorResult(400, "invalid_request", "The request body must be a JSON object.", null)) : (request, null);
    }

    internal static Task ErrorAsync(HttpContext http, int status, string code, string message, string? param)
    {
        http.Items[WebExtensions.ProblemCodeItem] = code;
        return Results.Json(OpenAiError.Create(message, OpenAiError.TypeFor(status), code, param), OpenAiJsonContext.Default.OpenAiErrorResponse, statusCode: status)
            .ExecuteAsync(http);
    }

    internal static async Task WriteDataAsync(HttpContext http, string data)
    {
        await http.Response.WriteAsync("data: " + data + "\n\n", http.RequestAborted);
        await http.Response.Body.FlushAsync(http.RequestAborted);
    }

}
