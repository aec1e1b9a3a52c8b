using System.Runtime.InteropServices;
using System.Security.Claims;
using System.Text.Json;
using Jackcwf.Api.Accounts;
using Jackcwf.Api.Ai;
using Jackcwf.Api.Ai.Embeddings;
using Jackcwf.Api.Limits;
using Jackcwf.Api.Usage;
using Jackcwf.Api.Web;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;

namespace Jackcwf.Api.OpenAiCompat;

/// <summary>
/// <c>POST /v1/embeddings</c> (OpenAI's shape; <c>model: "default"</c> is <c>EMBEDDING_MODEL</c>)
/// and <c>GET /v1/models/{id}</c> for chat and embedding models.
/// </summary>
public static class EmbeddingsApi
{
    private static readonly long ListedSince = new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeSeconds();

    public static RouteGroupBuilder MapEmbeddingsAndModelLookup(this RouteGroupBuilder v1)
    {
        v1.MapGet("/models/{**id}", GetModel).WithName("OpenAiGetModel")
            .WithSummary("One model (chat or embedding) in OpenAI's shape, or 404 model_not_found.");
        v1.MapPost("/embeddings", CreateEmbeddingsAsync).WithName("OpenAiEmbeddings")
            .WithSummary("OpenAI embeddings: input is a string or an array of strings; encoding_format float or base64.")
            .Accepts<EmbeddingRequest>("application/json");
        return v1;
    }

    /// <summary>Embedding models in OpenAI's list shape, appended to <c>GET /v1/models</c>.</summary>
    public static IEnumerable<ModelEntryDto> EmbeddingModelEntries(EmbeddingModels embeddings) =>
        embeddings.Ids.Select(id => new ModelEntryDto(id, "model", ListedSince, id[..id.IndexOf('/')]));

    public static IResult GetModel(string id, ModelCatalog catalog, EmbeddingModels embeddings, HttpContext http)
    {
        // Model ids contain a slash: clients send it encoded (openai%2Fgpt-4o) or, like the OpenAI SDK, as is.
        id = Uri.UnescapeDataString(id);
        var chat = catalog.Find(id);
        if (chat is not null)
        {
            return Results.Json(new ModelEntryDto(chat.Id, "model", ListedSince, chat.Provider), EmbeddingsJsonContext.Default.ModelEntryDto);
        }
        if (embeddings.Ids.Contains(id))
        {
            return Results.Json(new ModelEntryDto(id, "model", ListedSince, id[..id.IndexOf('/')]), EmbeddingsJsonContext.Default.ModelEntryDto);
        }
        http.Items[WebExtensions.ProblemCodeItem] = "model_not_found";
        return Results.Json(OpenAiError.Create($"The model '{Truncate(id)}' does not exist; GET /v1/models lists the available ones.", "invalid_request_error", "model_not_found", "model"),
            OpenAiJsonContext.Default.OpenAiErrorResponse, statusCode: 404);
    }

    public static async Task CreateEmbeddingsAsync(
        HttpContext http, ClaimsPrincipal user, EmbeddingModels embeddings, IOptions<EmbeddingOptions> options,
        LimitGuard guard, UsageLedger ledger)
    {
        if (await OpenAiCompatApi.ReadBodyAsync(http, EmbeddingsJsonContext.Default.EmbeddingRequest) is not { } request)
        {
            return;
        }
        if (request.Unknown is { Count: > 0 } unknown)
        {
            var names = string.Join(", ", unknown.Keys.Take(5).Select(Truncate));
            await ErrorAsync(http, 400, "unsupported_parameter", $"Unrecognized request argument supplied: {names}.", unknown.Keys.First());
            return;
        }
        var generator = embeddings.Get(request.Model);
        if (string.IsNullOrEmpty(request.Model) || generator is null)
        {
            await ErrorAsync(http, 404, "model_not_found",
                $"The embedding model '{Truncate(request.Model ?? "")}' does not exist; use \"default\" or one of: {string.Join(", ", embeddings.Ids)}.", "model");
            return;
        }
        var modelId = embeddings.Resolve(request.Model);
        var base64 = request.EncodingFormat switch
        {
            null or "float" => false,
            "base64" => true,
            _ => (bool?)null,
        };
        if (base64 is null)
        {
            await ErrorAsync(http, 400, "invalid_value", "encoding_format must be \"float\" or \"base64\".", "encoding_format");
            return;
        }
        if (request.Dimensions is { } d && (d < 1 || (modelId == LocalEmbeddingGenerator.ModelId && d != LocalEmbeddingGenerator.Dimensions)))
        {
            await ErrorAsync(http, 400, "invalid_value",
                modelId == LocalEmbeddingGenerator.ModelId ? $"{modelId} produces {LocalEmbeddingGenerator.Dimensions} dimensions; dimensions must be {LocalEmbeddingGenerator.Dimensions} or absent." : "dimensions must be at least 1.",
                "dimensions");
            return;
        }
        var (inputs, invalid) = ReadInput(request.Input, options.Value.MaxInputsPerRequest);
        if (invalid is not null)
        {
            await ErrorAsync(http, 400, "invalid_value", invalid, "input");
            return;
        }
        var totalChars = inputs.Sum(i => (long)i.Length);
        if (totalChars > guard.Options.MaxMessageChars)
        {
            await ErrorAsync(http, 400, "context_length_exceeded", $"The input holds {totalChars} characters; this server accepts at most {guard.Options.MaxMessageChars}.", "input");
            return;
        }

        GeneratedEmbeddings<Embedding<float>> result;
        try
        {
            result = await generator.GenerateAsync(inputs, new EmbeddingGenerationOptions { Dimensions = request.Dimensions }, http.RequestAborted);
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            return;
        }
        catch (ProviderException e)
        {
            await ErrorAsync(http, e.Failure.HttpStatus, $"provider_{e.Failure.Kind}", e.Failure.Detail, null);
            return;
        }
        var tokens = (int)Math.Min(int.MaxValue, result.Usage?.InputTokenCount ?? inputs.Sum(i => (i.Length + 3) / 4));
        if (modelId != LocalEmbeddingGenerator.ModelId)
        {
            // Provider embeddings are metered like gateway chat calls; the local model costs nothing and is not.
            await ledger.RecordAsync(user.Id(), user.ApiKeyId(), modelId, UsageLedger.Gateway, tokens, 0, 0m);
        }
        var usage = new EmbeddingUsage(tokens, tokens);
        if (base64 == true)
        {
            var items = result.Select((e, i) => new EmbeddingItem<string>("embedding", i, Convert.ToBase64String(MemoryMarshal.AsBytes(e.Vector.Span)))).ToList();
            await Results.Json(new EmbeddingList<string>("list", items, modelId, usage), EmbeddingsJsonContext.Default.EmbeddingListString).ExecuteAsync(http);
        }
        else
        {
            var items = result.Select((e, i) => new EmbeddingItem<float[]>("embedding", i, e.Vector.ToArray())).ToList();
            await Results.Json(new EmbeddingList<float[]>("list", items, modelId, usage), EmbeddingsJsonContext.Default.EmbeddingListSingleArray).ExecuteAsync(http);
        }
    }

    private static (List<string> Inputs, string? Invalid) ReadInput(JsonElement? input, int maxInputs)
    {
        var list = new List<string>();
        switch (input)
        {
            case { ValueKind: JsonValueKind.String } s:
                list.Add(s.GetString()!);
                break;
            case { ValueKind: JsonValueKind.Array } a:
                var i = 0;
                foreach (var item in a.EnumerateArray())
                {
                    if (item.ValueKind != JsonValueKind.String)
                    {
                        return (list, item.ValueKind == JsonValueKind.Number || item.ValueKind == JsonValueKind.Array
                            ? "input as token arrays is not supported here; send strings."
                            : $"input[{i}] must be a string.");
                    }
                    list.Add(item.GetString()!);
                    i++;
                }
                break;
            default:
                return (list, "input must be a string or an array of strings.");
        }
        if (list.Count == 0)
        {
            return (list, "input must not be empty.");
        }
        if (list.Count > maxInputs)
        {
            return (list, $"input holds {list.Count} texts; this server accepts at most {maxInputs} per request.");
        }
        var empty = list.FindIndex(string.IsNullOrEmpty);
        return empty >= 0 ? (list, $"input[{empty}] must not be an empty string.") : (list, null);
    }

    private static Task ErrorAsync(HttpContext http, int status, string code, string message, string? param) =>
        OpenAiCompatApi.ErrorAsync(http, status, code, message, param);

    private static string Truncate(string s) => s.Length <= 80 ? s : s[..80] + "…";
}
