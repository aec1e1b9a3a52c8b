using System.Diagnostics;
using System.Text.Json;
using Jackcwf.Api.Accounts;
using Jackcwf.Api.Configuration;
using Jackcwf.Api.ErrorHandling;
using Jackcwf.Api.Telemetry;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;
using Scalar.AspNetCore;

namespace Jackcwf.Api.Web;

public static class WebExtensions
{
    private const string Csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

    // The API reference page (Scalar) starts from an inline script and loads its bundle from the
    // jsDelivr CDN; it gets exactly that, and nothing may frame it or post forms elsewhere.
    private const string ApiReferenceCsp = "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; img-src 'self' data: https:; font-src 'self' data: https://fonts.gstatic.com https://cdn.jsdelivr.net; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

    public static IHostApplicationBuilder AddWeb(this IHostApplicationBuilder builder)
    {
        var s = builder.Services;
        s.ConfigureHttpJsonOptions(o =>
        {
            o.SerializerOptions.TypeInfoResolverChain.Insert(0, AppJsonContext.Default);
            o.SerializerOptions.MaxDepth = 64;
        });
        s.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        s.AddProblemDetails(o => o.CustomizeProblemDetails = ctx =>
        {
            ctx.ProblemDetails.Extensions.TryAdd("code", CodeFor(ctx.ProblemDetails.Status ?? 500));
            ctx.ProblemDetails.Extensions["traceId"] = Activity.Current?.TraceId.ToString() ?? ctx.HttpContext.TraceIdentifier;
            ctx.HttpContext.Items[ProblemCodeItem] = ctx.ProblemDetails.Extensions["code"];
        });
        s.AddExceptionHandler<ProblemExceptionHandler>();
        // The OpenAPI document is generated on its first request, from the endpoints' metadata; its services
        // (and Microsoft.OpenApi, the API explorer and MVC's core assembly under them) are registered only where
        // it is served, so a replica that does not serve it never loads them (docs/deployment/capacity.md,
        // "Memory at rest").
        if (ApiReferenceEnabled(builder.Configuration, builder.Environment))
        {
            AddOpenApiDocument(s);
        }
        s.AddSettings<ServerOptions>(ServerOptions.Section);
        s.AddSingleton<IValidateOptions<ServerOptions>, ValidateForwardedNetworks>();
        s.AddOptions<ForwardedHeadersOptions>().Configure<IOptions<ServerOptions>>((o, server) =>
        {
            o.ForwardedHeaders = ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto | ForwardedHeaders.XForwardedHost;
            // Only proxies in FORWARDED_TRUSTED_NETWORKS may say who the client is, so a direct client cannot
            // spoof its address (and escape the per-address limits), scheme or host. Every trusted hop is
            // unwrapped (Traefik, then the load balancer), up to the first address that is not trusted.
            o.KnownIPNetworks.Clear();
            o.KnownProxies.Clear();
            o.ForwardLimit = null;
            foreach (var network in ForwardedNetworks.Parse(server.Value.ForwardedTrustedNetworks).Networks)
            {
                o.KnownIPNetworks.Add(network);
            }
        });
        // Kestrel is built with the host, before the settings are validated: read the limit without
        // validating (a bad value falls back to the default here and is refused a moment later).
        s.AddOptions<KestrelServerOptions>().Configure<IConfiguration>((o, configuration) =>
        {
            var server = new ServerOptions();
            try
            {
                configuration.GetSection(ServerOptions.Section).Bind(server);
            }
            catch (InvalidOperationException)
            {
                server = new ServerOptions();
            }
            o.Limits.MaxRequestBodySize = server.MaxRequestBodyBytes;
            o.Limits.MaxRequestHeadersTotalSize = 64 * 1024;
            o.AddServerHeader = false;
        });
        return builder;
    }

    public static WebApplication UseWeb(this WebApplication app)
    {
        app.UseForwardedHeaders();
        app.UseExceptionHandler();
        app.UseStatusCodePages(async ctx =>
        {
            var http = ctx.HttpContext;
            var status = http.Response.StatusCode;
            // Empty 4xx/5xx answers (authentication challenges, unmatched methods) get a body in the caller's dialect.
            await ErrorResponses.WriteAsync(http, status, CodeFor(status), ReasonFor(status), DetailFor(status));
        });
        app.Use(SecurityHeadersAsync);
        app.UseMiddleware<RequestLog>();
        app.UseDefaultFiles();
        app.UseStaticFiles(new StaticFileOptions
        {
            OnPrepareResponse = ctx =>
            {
                // Vite fingerprints assets; index.html must be revalidated so deploys take effect.
                ctx.Context.Response.Headers.CacheControl = ctx.File.Name.EndsWith(".html", StringComparison.Ordinal)
                    ? "no-cache" : "public, max-age=31536000, immutable";
            },
        });
        return app;
    }

    public static WebApplication MapWebEndpoints(this WebApplication app)
    {
        // The API reference tells an attacker every route and field: on by default in Development
        // only (API_REFERENCE_ENABLED turns it on or off explicitly), decided with the services in AddWeb.
        if (app.Services.GetService<ApiReferenceServed>() is not null)
        {
            MapApiReference(app);
        }
        // GET/HEAD only, so requests that routing refused for their method or content type keep their 405/415.
        app.MapMethods("/{**path:nonfile}", [HttpMethods.Get, HttpMethods.Head], async ctx =>
        {
            var path = ctx.Request.Path;
            if (path.StartsWithSegments("/api") || path.StartsWithSegments("/v1") || Path.HasExtension(path.Value)
                || path.StartsWithSegments("/scalar") || path.StartsWithSegments("/openapi") || path.StartsWithSegments("/metrics"))
            {
                await ErrorResponses.WriteAsync(ctx, 404, "not_found", "Not found", "No such route.");
                return;
            }
            await SendIndexAsync(ctx, app.Environment);
        }).ExcludeFromDescription().Add(b => ((RouteEndpointBuilder)b).Order = int.MaxValue);
        return app;
    }

    /// <summary>
    /// API_REFERENCE_ENABLED as the container is built, before the settings are validated: a value that is
    /// not a boolean counts as unset here and is refused a moment later by the validation.
    /// </summary>
    private static bool ApiReferenceEnabled(IConfiguration configuration, IHostEnvironment environment)
    {
        bool? enabled;
        try
        {
            enabled = configuration.GetValue<bool?>($"{ServerOptions.Section}:{nameof(ServerOptions.ApiReferenceEnabled)}");
        }
        catch (InvalidOperationException)
        {
            enabled = null;
        }
        return enabled ?? environment.IsDevelopment();
    }

    // The OpenAPI and Scalar calls live in methods of their own: a method loads the assemblies of the types it
    // names when it is first called, so these load only where the API reference is served.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void AddOpenApiDocument(IServiceCollection services)
    {
        services.AddOpenApi();
        services.AddSingleton<ApiReferenceServed>();
    }

    /// <summary>Registered where the API reference is served (see <see cref="MapWebEndpoints"/>).</summary>
    private sealed class ApiReferenceServed;

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void MapApiReference(WebApplication app)
    {
        app.MapOpenApi("/openapi/{documentName}.json");
        app.MapScalarApiReference("/scalar", o => o.WithOpenApiRoutePattern("/openapi/{documentName}.json").WithTitle("Jackcwf API"));
    }

    /// <summary>The web app's page, for every client-side route (the status code is the caller's).</summary>
    public static async Task SendIndexAsync(HttpContext ctx, IWebHostEnvironment env)
    {
        var index = Path.Combine(env.WebRootPath ?? Path.Combine(env.ContentRootPath, "wwwroot"), "index.html");
        ctx.Response.ContentType = "text/html; charset=utf-8";
        ctx.Response.Headers.CacheControl = "no-cache";
        if (File.Exists(index))
        {
            await ctx.Response.SendFileAsync(index);
        }
        else
        {
            await ctx.Response.WriteAsync("<!doctype html><title>Jackcwf</title><h1>Jackcwf API is running</h1><p>The web app is not built: run <code>./run.sh</code> (it builds <code>web/</code>). The API reference is at <a href=\"/scalar\">/scalar</a> when API_REFERENCE_ENABLED is true (the default in Development).</p>");
        }
    }

    private static async Task SecurityHeadersAsync(HttpContext ctx, RequestDelegate next)
    {
        var h = ctx.Response.Headers;
        h.XContentTypeOptions = "nosniff";
        h.XFrameOptions = "DENY";
        h["Referrer-Policy"] = "no-referrer";
        h["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), payment=()";
        h["Cross-Origin-Opener-Policy"] = "same-origin";
        // The API reference page needs its own scripts; everything else gets the strict policy.
        h.ContentSecurityPolicy = ctx.Request.Path.StartsWithSegments("/scalar") ? ApiReferenceCsp : Csp;
        if (ctx.Request.IsHttps)
        {
            h.StrictTransportSecurity = "max-age=31536000";
        }
        if (HasUnknownCharset(ctx.Request))
        {
            await ErrorResponses.WriteAsync(ctx, 415, "unsupported_media_type", "Unsupported media type", "The request's charset is not supported; send UTF-8 JSON.");
            return;
        }
        if (IsCsrfSuspect(ctx.Request))
        {
            await TypedResults.Problem(Problems.Create(403, "csrf", "Cross-site request refused",
                "Requests authenticated by the session cookie must send the header X-Requested-With.")).ExecuteAsync(ctx);
            return;
        }
        await next(ctx);
    }

    private static bool HasUnknownCharset(HttpRequest r)
    {
        if (r.ContentType is null || !Microsoft.Net.Http.Headers.MediaTypeHeaderValue.TryParse(r.ContentType, out var media) || !media.Charset.HasValue)
        {
            return false;
        }
        try
        {
            _ = System.Text.Encoding.GetEncoding(media.Charset.Value!.Trim('"'));
            return false;
        }
        catch (ArgumentException)
        {
            return true;
        }
    }

    /// <summary>
    /// A state-changing request that carries the session cookie but no custom header could come from
    /// another site's form; browsers cannot add custom headers cross-site without CORS, which we never allow.
    /// </summary>
    private static bool IsCsrfSuspect(HttpRequest r) =>
        !HttpMethods.IsGet(r.Method) && !HttpMethods.IsHead(r.Method) && !HttpMethods.IsOptions(r.Method)
        && r.Cookies.ContainsKey(AccountsExtensions.SessionCookieName)
        && !HasOwnBearer(r)
        && !r.Headers.ContainsKey("X-Requested-With")
        && (r.Path.StartsWithSegments("/api") || r.Path.StartsWithSegments("/v1"));

    /// <summary>
    /// A bearer token or API key of this service: browsers never attach one by themselves, unlike Basic
    /// or Negotiate credentials (a proxy's basic auth), which they replay on cross-site form posts.
    /// </summary>
    private static bool HasOwnBearer(HttpRequest r) =>
        r.Headers.Authorization is [{ } value]
        && value.StartsWith("Bearer ", StringComparison.Ordinal)
        && value.Length > "Bearer ".Length
        && !value.AsSpan("Bearer ".Length).ContainsAny(' ', ',');

    /// <summary>The problem code folded onto the documented, low-cardinality error_type values.</summary>
    internal static string ErrorTypeOf(HttpContext ctx, int status)
    {
        var code = ctx.Items.TryGetValue(ProblemCodeItem, out var c) && c is string s ? s : CodeFor(status);
        return code switch
        {
            "validation" or "not_found" or "unauthorized" or "forbidden" or "conflict" or "payload_too_large" or "rate_limited"
                or "provider_error" or "provider_unavailable" or "provider_timeout" or "internal" => code,
            "provider_rate_limited" or "provider_stream_broken" => "provider_unavailable",
            _ when code.StartsWith("provider_", StringComparison.Ordinal) => "provider_error",
            "budget_exceeded" => "rate_limited",
            "account_disabled" => "unauthorized",
            "csrf" or "registration_closed" => "forbidden",
            "model_not_found" => "not_found",
            _ => status switch
            {
                400 or 415 or 422 => "validation",
                401 => "unauthorized",
                403 => "forbidden",
                404 => "not_found",
                409 => "conflict",
                413 => "payload_too_large",
                429 => "rate_limited",
                500 => "internal",
                _ => "other",
            },
        };
    }

    public const string ProblemCodeItem = "jackcwf.problem.code";

    private static string ReasonFor(int status) => Microsoft.AspNetCore.WebUtilities.ReasonPhrases.GetReasonPhrase(status) is { Length: > 0 } r ? r : "Error";

    private static string DetailFor(int status) => status switch
    {
        401 => "Sign in, or send a valid bearer token or API key in the Authorization header.",
        403 => "You are not allowed to do this.",
        404 => "No such route.",
        405 => "This route does not accept that HTTP method.",
        _ => ReasonFor(status),
    };

    public static string CodeFor(int status) => status switch
    {
        400 => "validation",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        409 => "conflict",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "unprocessable",
        429 => "rate_limited",
        502 => "provider_error",
        503 => "unavailable",
        504 => "provider_timeout",
        >= 500 => "internal",
        _ => "other",
    };
}

/// <summary>
/// Turns malformed requests into 400/413/415 problems naming the field, and anything unexpected
/// into a 500 problem without internals (the exception is logged with the trace id).
/// </summary>
internal sealed class ProblemExceptionHandler(IProblemDetailsService problems, ILogger<ProblemExceptionHandler> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext ctx, Exception exception, CancellationToken ct)
    {
        ProblemDetails problem;
        if (exception is Microsoft.AspNetCore.Http.BadHttpRequestException bad)
        {
            var field = FieldOf(bad.InnerException) ?? QueryFieldOf(bad.Message);
            problem = bad.StatusCode switch
            {
                413 => Problems.Create(413, "payload_too_large", "The request body is too large", $"Request bodies are limited to {ctx.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize ?? 1048576} bytes."),
                415 => Problems.Create(415, "unsupported_media_type", "Unsupported media type", "Send JSON with Content-Type: application/json."),
                _ when bad.InnerException is JsonException => Problems.Create(400, "validation", "The request body is not valid JSON for this endpoint",
                    field is null ? "The body must be a JSON object of the documented shape." : $"{field}: has the wrong JSON type or format."),
                _ => Problems.Create(bad.StatusCode, "validation", "The request is invalid", Clean(bad.Message)),
            };
            if (field is not null)
            {
                problem.Extensions["errors"] = new Dictionary<string, string[]>
                {
                    [field] = [bad.InnerException is JsonException ? "has the wrong JSON type or format" : "has the wrong type or format"],
                };
            }
            logger.LogInformation("Rejected a malformed request: {Status} {Field}", problem.Status, field);
        }
        else if (exception is OperationCanceledException && ctx.RequestAborted.IsCancellationRequested)
        {
            return true;
        }
        else if (exception is Microsoft.EntityFrameworkCore.DbUpdateException)
        {
            // Two requests changed the same thing at once (a unique key, a concurrency token): the loser retries.
            logger.LogInformation("Concurrent update refused on {Path}", ctx.Request.Path.Value);
            problem = Problems.Create(409, "conflict", "Conflict", "Another request changed the same data at the same time; try again.");
        }
        else
        {
            logger.LogError(exception, "Unhandled exception on {Method} {Path}", ctx.Request.Method, ctx.Request.Path.Value);
            problem = Problems.Create(500, "internal", "Something went wrong", "The error was logged; quote the traceId when reporting it.");
        }
        if (ctx.Response.HasStarted)
        {
            return true;
        }
        ctx.Response.StatusCode = problem.Status ?? 500;
        ctx.Items[WebExtensions.ProblemCodeItem] = problem.Extensions["code"];
        if (ctx.Request.Path.StartsWithSegments("/v1"))
        {
            await ErrorResponses.WriteAsync(ctx, problem.Status ?? 500, (string)problem.Extensions["code"]!, problem.Title ?? "Error", problem.Detail ?? problem.Title ?? "Error");
            return true;
        }
        if (!await problems.TryWriteAsync(new ProblemDetailsContext { HttpContext = ctx, ProblemDetails = problem, Exception = null }))
        {
            // The client's Accept (e.g. text/event-stream) matched no writer: answer problem+json anyway.
            ctx.Response.ContentType = "application/problem+json";
            await JsonSerializer.SerializeAsync(ctx.Response.Body, problem, AppJsonContext.Default.ProblemDetails, ct);
        }
        return true;
    }

    /// <summary>JsonException.Path is like <c>$.content</c> or <c>$.messages[0].role</c>.</summary>
    private static string? FieldOf(Exception? inner) =>
        inner is JsonException { Path: { Length: > 2 } p } && p.StartsWith("$.", StringComparison.Ordinal) ? p[2..] : null;

    /// <summary>A query or route value that does not parse: "Failed to bind parameter "bool? archived" from "maybe"."</summary>
    private static string? QueryFieldOf(string message) =>
        System.Text.RegularExpressions.Regex.Match(message, "^Failed to bind parameter \"(?:[^\"]* )?([A-Za-z_][A-Za-z0-9_]*)\" from ") is { Success: true } m
            ? m.Groups[1].Value : null;

    // System.Text.Json messages can quote the input type names; keep them short and without internals.
    private static string Clean(string message)
    {
        var cut = message.IndexOf(" Path:", StringComparison.Ordinal);
        var m = cut > 0 ? message[..cut] : message;
        return m.Replace("System.", "", StringComparison.Ordinal);
    }
}
