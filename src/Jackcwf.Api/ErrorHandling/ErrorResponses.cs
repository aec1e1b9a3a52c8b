using System.Text.Json;
using Jackcwf.Api.Limits;
using Jackcwf.Api.OpenAiCompat;
using Jackcwf.Api.Web;
using Microsoft.AspNetCore.Mvc;

namespace Jackcwf.Api.ErrorHandling;

/// <summary>Errors written outside endpoints: problem+json on /api, OpenAI's error shape on /v1.</summary>
public static class ErrorResponses
{
    public static async Task WriteAsync(HttpContext ctx, int status, string code, string title, string detail, Action<ProblemDetails>? extend = null)
    {
        ctx.Items[WebExtensions.ProblemCodeItem] = code;
        if (ctx.Request.Path.StartsWithSegments("/v1"))
        {
            ctx.Response.StatusCode = status;
            ctx.Response.ContentType = "application/json";
            await ctx.Response.WriteAsync(JsonSerializer.Serialize(OpenAiError.Create(detail, OpenAiError.TypeFor(status), code), OpenAiJsonContext.Default.OpenAiErrorResponse));
            return;
        }
        var problem = Problems.Create(status, code, title, detail);
        extend?.Invoke(problem);
        await TypedResults.Problem(problem).ExecuteAsync(ctx);
    }

    public static Task WriteRefusalAsync(HttpContext ctx, LimitRefusal refusal)
    {
        ctx.Response.Headers.RetryAfter = refusal.RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return WriteAsync(ctx, 429, refusal.Limit == "budget" ? "budget_exceeded" : "rate_limited", refusal.Title, refusal.Detail,
            p => p.Extensions["limit"] = refusal.Limit);
    }
}
