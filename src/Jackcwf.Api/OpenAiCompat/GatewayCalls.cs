using System.Security.Claims;
using Jackcwf.Api.Accounts;
using Jackcwf.Api.Ai;
using Jackcwf.Api.Ai.Pipeline;
using Jackcwf.Api.ErrorHandling;
using Jackcwf.Api.Limits;
using Jackcwf.Api.Telemetry;
using Jackcwf.Api.Usage;
using Jackcwf.Api.Web;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.AI;

namespace Jackcwf.Api.OpenAiCompat;

/// <summary>An error in OpenAI's shape (<c>{"error":{…}}</c>) with its HTTP status; a limit's refusal adds <c>Retry-After</c>.</summary>
public sealed class OpenAiErrorResult : IResult
{
    private readonly Func<HttpContext, Task> _write;

    public OpenAiErrorResult(int status, string code, string message, string? param) =>
        _write = http => OpenAiCompatApi.ErrorAsync(http, status, code, message, param);

    public OpenAiErrorResult(LimitRefusal refusal) => _write = http => ErrorResponses.WriteRefusalAsync(http, refusal);

    public Task ExecuteAsync(HttpContext httpContext) => _write(httpContext);
}

/// <summary>
/// A /v1 chat completion whose limits are taken: runs it through the model pipeline when the response
/// is written, streamed or not. Disabling the user or revoking the key cancels it, on whichever replica
/// runs it, the way a client disconnect would; the caller then gets a final <c>access_revoked</c> error.
/// </summary>
public sealed class GatewayCallResult(
    IChatClient client, ChatCall call, List<ChatMessage> messages, ChatOptions options, bool stream, bool includeUsage,
    AccessRevocations revocations, ILogger logger) : IResult
{
    public async Task ExecuteAsync(HttpContext http)
    {
        using var revocation = revocations.Track(call.UserId, call.ApiKeyId);
        // The call stops when the client leaves or access ends; the response's writes keep the client's
        // token only: Kestrel aborts the connection when a write's token is cancelled, and the caller
        // must still read the final access_revoked error.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, revocation.Token);
        var stopped = stream
            ? await GatewayCompletions.StreamAsync(http, client, call, messages, call.Attach(options), includeUsage, stop.Token, logger)
            : await GatewayCompletions.CompleteAsync(http, client, call, messages, call.Attach(options), stop.Token, logger);
        if (stopped && revocation.IsRevoked && !http.RequestAborted.IsCancellationRequested)
        {
            await OpenAiCompatApi.RevokedAsync(http);
        }
    }
}

/// <summary>
/// Starts a /v1 chat completion as one unit: checks the model and the request against the limits,
/// takes the account's stream slot (streamed calls) and a generation slot, and hands back the call to
/// run, or the error to answer. The slots are released when the response ends.
/// </summary>
public sealed class GatewayCalls(
    ModelCatalog catalog, ChatClientProvider clients, LimitGuard guard, JackcwfMetrics metrics, AccessRevocations revocations, ILoggerFactory loggers)
{
    private readonly ILogger _logger = loggers.CreateLogger("Jackcwf.Gateway");

    public async Task<Results<GatewayCallResult, OpenAiErrorResult>> StartAsync(
        ChatCompletionRequest request, ClaimsPrincipal user, CacheDirective cache, long accepted, HttpResponse response)
    {
        var model = catalog.Find(request.Model) ?? catalog.Available.FirstOrDefault(m => m.Name == request.Model);
        if (string.IsNullOrEmpty(request.Model) || model is null)
        {
            return await InvalidAsync(response.HttpContext, new OpenAiErrorResult(404, "model_not_found",
                $"The model '{Truncate(request.Model ?? "")}' does not exist; GET /v1/models lists the available ones.", "model"));
        }
        if (ChatRequestMapping.TryMap(request, model, out var mapped) is { } mappingError)
        {
            return await InvalidAsync(response.HttpContext, new OpenAiErrorResult(400, mappingError.Code, mappingError.Message, mappingError.Param));
        }
        var (messages, options, totalChars) = mapped;
        var limits = guard.Options;
        if (totalChars > limits.MaxMessageChars)
        {
            return await InvalidAsync(response.HttpContext, new OpenAiErrorResult(400, "context_length_exceeded",
                $"The messages hold {totalChars} characters; this server accepts at most {limits.MaxMessageChars}.", "messages"), "input_size");
        }
        var maxTokens = request.MaxCompletionTokens ?? request.MaxTokens;
        if (maxTokens is < 1 || maxTokens > limits.MaxOutputTokens)
        {
            return await InvalidAsync(response.HttpContext, new OpenAiErrorResult(400, "invalid_value",
                $"max_tokens must be between 1 and {limits.MaxOutputTokens} on this server.", "max_tokens"), "output_tokens");
        }
        options.MaxOutputTokens = maxTokens ?? model.MaxOutputTokens ?? limits.MaxOutputTokens;
        var userId = user.Id();
        var stream = request.Stream == true;
        // One store call takes everything the call needs: its request windows, the account's stream slot
        // (a stream holds one, shared with chat streams, until the provider's answer has ended, when it is freed
        // with the settlement, or the client leaves), a generation slot and the most the call can cost from the
        // month's budget.
        var admission = await guard.AdmitCallAsync(userId, user.ApiKeyId(), LockoutClient(response.HttpContext), stream,
            clients.MaxCost(model, messages, options));
        if (admission.Refusal is { } refusal)
        {
            return Refused(refusal);
        }
        if (admission.StreamSlot is { } streamSlot)
        {
            response.RegisterForDisposeAsync(streamSlot);
        }
        response.RegisterForDisposeAsync(admission.Slot!);
        var call = new ChatCall
        {
            UserId = userId, ApiKeyId = user.ApiKeyId(), Source = UsageLedger.Gateway, RequestedModel = model, Cache = cache, AcceptedTimestamp = accepted,
            Slot = admission.Slot, Reservation = admission.Reservation,
        };
        return new GatewayCallResult(clients.Get(model), call, messages, options, stream, request.StreamOptions?.IncludeUsage == true, revocations, _logger);
    }

    /// <summary>
    /// An invalid request's answer. The request windows are taken on this route by the admission (not by
    /// the limits middleware), so a request refused before it is counted here, as on every other route:
    /// over the limit, its answer is the 429.
    /// </summary>
    /// <param name="limit">The limit the request exceeds, counted as refused (<c>jackcwf_limit_refusals_total</c>) when it is the answer.</param>
    public async Task<OpenAiErrorResult> InvalidAsync(HttpContext http, OpenAiErrorResult invalid, string? limit = null)
    {
        if (await guard.CheckRateAsync(http.User.Id(), http.User.ApiKeyId(), LockoutClient(http)) is { } refusal)
        {
            return Refused(refusal);
        }
        if (limit is not null)
        {
            metrics.LimitRefused(limit);
        }
        return invalid;
    }

    private static string? LockoutClient(HttpContext http) => http.Items[ApiKeyAuthenticationHandler.LockoutPendingItem] as string;

    private static OpenAiErrorResult Refused(LimitRefusal refusal) => new(refusal);

    private static string Truncate(string s) => s.Length <= 80 ? s : s[..80] + "…";
}
