using System.Diagnostics;
using System.Security.Claims;
using System.Text;
using System.Text.Json;
using Jackcwf.Api.Accounts;
using Jackcwf.Api.Ai;
using Jackcwf.Api.Ai.Pipeline;
using Jackcwf.Api.Limits;
using Jackcwf.Api.Telemetry;
using Jackcwf.Api.Usage;
using Jackcwf.Api.Web;
using Microsoft.Extensions.AI;

namespace Jackcwf.Api.OpenAiCompat;

/// <summary>
/// The OpenAI-compatible gateway: <c>POST /v1/chat/completions</c> (streamed and not) and
/// <c>GET /v1/models</c>, routed to the configured providers through the same chat pipeline,
/// with limits, usage and cost recorded per key and user. Stateless: nothing is stored but the ledger.
/// </summary>
public static class OpenAiCompatApi
{
    public static IEndpointRouteBuilder MapOpenAiCompatApi(this IEndpointRouteBuilder app)
    {
        var v1 = app.MapGroup("/v1").WithTags("OpenAI-compatible gateway").RequireAuthorization();
        v1.MapGet("/models", ListModels).WithName("OpenAiListModels").WithSummary("The available models in OpenAI's list shape.");
        v1.MapPost("/chat/completions", ChatCompletionsAsync).WithName("OpenAiChatCompletions")
            .WithSummary("OpenAI chat completions, streamed (stream: true) or not; errors use OpenAI's error shape.")
            .Accepts<ChatCompletionRequest>("application/json");
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

    public static async Task ChatCompletionsAsync(
        HttpContext http, ClaimsPrincipal user, ModelCatalog catalog, ChatClientProvider clients, LimitGuard guard,
        JackcwfMetrics metrics, ILoggerFactory loggers, AccessRevocations revocations)
    {
        var accepted = Stopwatch.GetTimestamp();
        if (await ReadBodyAsync(http, OpenAiJsonContext.Default.ChatCompletionRequest) is not { } request)
        {
            return;
        }
        var model = catalog.Find(request.Model) ?? catalog.Available.FirstOrDefault(m => m.Name == request.Model);
        if (string.IsNullOrEmpty(request.Model) || model is null)
        {
            await ErrorAsync(http, 404, "model_not_found", $"The model '{Truncate(request.Model ?? "")}' does not exist; GET /v1/models lists the available ones.", "model");
            return;
        }
        if (ChatRequestMapping.TryMap(request, model, out var mapped) is { } mappingError)
        {
            await ErrorAsync(http, 400, mappingError.Code, mappingError.Message, mappingError.Param);
            return;
        }
        var (messages, options, totalChars) = mapped;
        var limits = guard.Options;
        if (totalChars > limits.MaxMessageChars)
        {
            metrics.LimitRefused("input_size");
            await ErrorAsync(http, 400, "context_length_exceeded", $"The messages hold {totalChars} characters; this server accepts at most {limits.MaxMessageChars}.", "messages");
            return;
        }
        var maxTokens = request.MaxCompletionTokens ?? request.MaxTokens;
        if (maxTokens is < 1 || maxTokens > limits.MaxOutputTokens)
        {
            metrics.LimitRefused("output_tokens");
            await ErrorAsync(http, 400, "invalid_value", $"max_tokens must be between 1 and {limits.MaxOutputTokens} on this server.", "max_tokens");
            return;
        }
        var userId = user.Id();
        // A stream holds one of the account's stream slots (shared with chat streams) until it ends or the client leaves.
        GenerationSlot? streamSlot = null;
        if (request.Stream == true)
        {
            (streamSlot, var tooManyStreams) = await guard.TakeStreamSlotAsync(userId);
            if (tooManyStreams is not null)
            {
                await ErrorResponses.WriteRefusalAsync(http, tooManyStreams);
                return;
            }
        }
        await using var __ = streamSlot;
        var (slot, refusal) = await guard.AcquireGenerationAsync(userId, model);
        if (refusal is not null)
        {
            await ErrorResponses.WriteRefusalAsync(http, refusal);
            return;
        }
        await using var _ = slot;

        options.MaxOutputTokens = maxTokens ?? model.MaxOutputTokens ?? limits.MaxOutputTokens;
        var call = new ChatCall
        {
            UserId = userId, ApiKeyId = user.ApiKeyId(), Source = UsageLedger.Gateway, RequestedModel = model,
            Cache = CacheDirectives.FromHeader(http.Request.Headers.CacheControl), AcceptedTimestamp = accepted,
        };
        var logger = loggers.CreateLogger("Jackcwf.Gateway");
        // Disabling the user or revoking the key cancels this call, on whichever replica runs it, the
        // way a client disconnect would; the caller then gets a final access_revoked error.
        using var revocation = revocations.Track(userId, user.ApiKeyId());
        var aborted = http.RequestAborted;
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(aborted, revocation.Token);
        http.RequestAborted = cancel.Token;
        try
        {
            if (request.Stream == true)
            {
                await GatewayCompletions.StreamAsync(http, clients.Get(model), call, messages, call.Attach(options), request.StreamOptions?.IncludeUsage == true, logger);
            }
            else
            {
                await GatewayCompletions.CompleteAsync(http, clients.Get(model), call, messages, call.Attach(options), logger);
            }
        }
        finally
        {
            http.RequestAborted = aborted;
        }
        if (revocation.IsRevoked && !aborted.IsCancellationRequested)
        {
            await RevokedAsync(http);
        }
    }

    /// <summary>The caller lost access mid-call: a final error event on a started stream, else a 401.</summary>
    private static Task RevokedAsync(HttpContext http)
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
        T? request;
        try
        {
            request = await JsonSerializer.DeserializeAsync(http.Request.Body, type, http.RequestAborted);
        }
        catch (JsonException e)
        {
            await ErrorAsync(http, 400, "invalid_json", $"We could not parse the JSON body of your request ({e.Path ?? "$"}).", e.Path?.TrimStart('$', '.'));
            return null;
        }
        if (request is null)
        {
            await ErrorAsync(http, 400, "invalid_request", "The request body must be a JSON object.", null);
        }
        return request;
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

    private static string Truncate(string s) => s.Length <= 80 ? s : s[..80] + "…";
}
