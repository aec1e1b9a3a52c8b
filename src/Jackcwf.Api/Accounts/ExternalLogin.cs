using Jackcwf.Api.Configuration;
using Jackcwf.Api.Data;
using Jackcwf.Api.ErrorHandling;
using Jackcwf.Api.Telemetry;
using Jackcwf.Api.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;

namespace Jackcwf.Api.Accounts;

public sealed record ExternalProvider(string Name, string DisplayName, string LoginUrl);

public static class ExternalLogin
{
    /// <summary>The authentication scheme, the provider name on the wire and in AspNetUserLogins.</summary>
    public const string Scheme = "oidc";
    public const string ReturnUrlItem = "returnUrl";
    private const string StartPath = "/api/auth/external/oidc";
    private const string CompletePath = "/api/auth/external/oidc/complete";

    public static IHostApplicationBuilder AddExternalLogin(this IHostApplicationBuilder builder)
    {
        var s = builder.Services;
        s.AddSettings<ExternalLoginOptions>(ExternalLoginOptions.Section);
        s.AddSingleton<IValidateOptions<ExternalLoginOptions>, ValidateExternalLoginOptions>();
        s.AddScoped<ExternalLoginAccounts>();

        // The handler exists only when configured: its discovery document is fetched on the first sign-in.
        var settings = builder.Configuration.GetSection(ExternalLoginOptions.Section).Get<ExternalLoginOptions>() ?? new();
        if (!settings.IsEnabled || !Uri.TryCreate(settings.Authority, UriKind.Absolute, out var authority))
        {
            return builder;
        }
        AddOpenIdConnect(s, settings, authority);
        return builder;
    }

    /// <summary>
    /// The OpenID Connect handler, in a method of its own: the assembly it lives in is loaded only when a
    /// provider is configured (a method's referenced types load their assemblies when it is first called).
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void AddOpenIdConnect(IServiceCollection s, ExternalLoginOptions settings, Uri authority)
    {
        s.AddAuthentication().AddOpenIdConnect(Scheme, settings.EffectiveDisplayName, o =>
        {
            o.Authority = settings.Authority;
            o.ClientId = settings.ClientId;
            o.ClientSecret = string.IsNullOrEmpty(settings.ClientSecret) ? null : settings.ClientSecret;
            // Authorization code flow with PKCE; the code comes back in the query string of a top-level
            // GET, so the correlation and nonce cookies can be SameSite=Lax (form_post would need None).
            o.ResponseType = OpenIdConnectResponseType.Code;
            o.ResponseMode = OpenIdConnectResponseMode.Query;
            o.UsePkce = true;
            // Pushed authorization requests (RFC 9126) when the provider offers them, the framework's default: the
            // parameters travel over the back channel instead of through the browser.
            o.PushedAuthorizationBehavior = PushedAuthorizationBehavior.UseIfAvailable;
            o.Scope.Clear();
            foreach (var scope in settings.EffectiveScopes)
            {
                o.Scope.Add(scope);
            }
            o.CallbackPath = settings.EffectiveCallbackPath;
            // The provider's identity lives only in a short-lived external cookie until it is mapped to a local account.
            o.SignInScheme = IdentityConstants.ExternalScheme;
            o.MapInboundClaims = false;
            o.GetClaimsFromUserInfoEndpoint = true;
            o.ClaimActions.MapUniqueJsonKey("email_verified", "email_verified");
            o.SaveTokens = false;
            o.DisableTelemetry = true;
            // An http issuer is allowed for providers on a private network (e.g. Keycloak in the same Compose
            // project); a warning is logged at start unless it is loopback.
            o.RequireHttpsMetadata = authority.Scheme == Uri.UriSchemeHttps;
            o.CorrelationCookie.SameSite = SameSiteMode.Lax;
            o.CorrelationCookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
            o.NonceCookie.SameSite = SameSiteMode.Lax;
            o.NonceCookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
            o.Events.OnRedirectToIdentityProvider = ctx =>
            {
                var publicBase = ctx.HttpContext.RequestServices.GetRequiredService<IOptions<ServerOptions>>().Value.PublicBaseUrl;
                if (!string.IsNullOrWhiteSpace(publicBase))
                {
                    // Behind a proxy that does not forward the public host, the operator's URL is the truth.
                    ctx.ProtocolMessage.RedirectUri = publicBase.TrimEnd('/') + ctx.Options.CallbackPath;
                }
                return Task.CompletedTask;
            };
            o.Events.OnRemoteFailure = ctx =>
            {
                var services = ctx.HttpContext.RequestServices;
                services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(ExternalLogin).FullName!)
                    .LogWarning("OpenID Connect sign-in failed at the callback: {Reason}", ctx.Failure?.Message);
                services.GetRequiredService<JackcwfMetrics>().Login(Scheme, false);
                ctx.Response.Redirect(ErrorRedirect(ExternalLoginAccounts.Errors.ProviderFailed));
                ctx.HandleResponse();
                return Task.CompletedTask;
            };
        });
        s.AddHostedService(sp => new StartupNotice(sp.GetRequiredService<ILogger<StartupNotice>>(), authority, settings.ClientId!));
    }

    public static IEndpointRouteBuilder MapExternalLoginApi(this IEndpointRouteBuilder app)
    {
        var auth = app.MapGroup("/api/auth").WithTags("Accounts");
        auth.MapGet("/providers", ListProviders).WithName("ListExternalProviders")
            .WithSummary("External sign-in providers the web app can offer (an empty list when none is configured).");
        auth.MapGet("/external/oidc", ChallengeAsync).WithName("ExternalLoginStart")
            .WithSummary("Start signing in with the configured OpenID Connect provider; returnUrl must be a local path.");
        auth.MapGet("/external/oidc/complete", CompleteAsync).WithName("ExternalLoginComplete")
            .WithSummary("Map the provider's user to a local account, start the session and go back to returnUrl.");
        return app;
    }

    public static Ok<ExternalProvider[]> ListProviders(IOptions<ExternalLoginOptions> options) =>
        TypedResults.Ok(options.Value.IsEnabled
            ? new[] { new ExternalProvider(Scheme, options.Value.EffectiveDisplayName, $"{StartPath}?returnUrl=/") }
            : []);

    public static async Task<IResult> ChallengeAsync(HttpContext http, IOptions<ExternalLoginOptions> options, ILogger<ExternalLoginAccounts> logger, string? returnUrl = null)
    {
        if (!options.Value.IsEnabled)
        {
            return NotConfigured();
        }
        var properties = new AuthenticationProperties { RedirectUri = http.Request.PathBase + CompletePath };
        properties.Items[ReturnUrlItem] = LocalReturnUrl(returnUrl);
        try
        {
            await http.ChallengeAsync(Scheme, properties);
        }
        catch (OpenIdConnectProtocolException e)
        {
            // The provider refused the pushed authorization request (e.g. a redirect URI it does not know).
            logger.LogWarning("The OpenID Connect provider refused the sign-in request: {Reason}", e.Message);
            http.RequestServices.GetRequiredService<JackcwfMetrics>().Login(Scheme, false);
            return TypedResults.Redirect(ErrorRedirect(ExternalLoginAccounts.Errors.ProviderFailed));
        }
        catch (Exception e) when (e is InvalidOperationException or HttpRequestException or IOException or TaskCanceledException)
        {
            // The provider's discovery document could not be loaded: say so instead of a 500.
            logger.LogWarning("The OpenID Connect provider could not be reached: {Reason}", e.Message);
            http.RequestServices.GetRequiredService<JackcwfMetrics>().Login(Scheme, false);
            return TypedResults.Redirect(ErrorRedirect(ExternalLoginAccounts.Errors.ProviderUnavailable));
        }
        return TypedResults.Empty;
    }

    public static async Task<IResult> CompleteAsync(
        HttpContext http, IOptions<ExternalLoginOptions> options, ExternalLoginAccounts accounts, SignInManager<AppUser> signIn, JackcwfMetrics metrics,
        Audit.IAuditLog audit)
    {
        if (!options.Value.IsEnabled)
        {
            return NotConfigured();
        }
        var external = await http.AuthenticateAsync(IdentityConstants.ExternalScheme);
        // The external cookie has done its job whatever happens next.
        await http.SignOutAsync(IdentityConstants.ExternalScheme);
        if (!external.Succeeded || external.Principal is null)
        {
            metrics.Login(Scheme, false);
            return TypedResults.Redirect(ErrorRedirect(ExternalLoginAccounts.Errors.ProviderFailed));
        }
        var returnUrl = LocalReturnUrl(external.Properties?.Items.TryGetValue(ReturnUrlItem, out var r) == true ? r : null);
        var outcome = await accounts.FindOrCreateAsync(ExternalIdentity.From(external.Principal), AuthRoutes.IsLoopback(http));
        if (outcome.User is null)
        {
            metrics.Login(Scheme, false);
            await audit.RecordAsync(http, Audit.AuditActions.SignIn, Audit.AuditOutcomes.Failure, detail: $"{Scheme}: {outcome.Error}");
            return TypedResults.Redirect(ErrorRedirect(outcome.Error ?? ExternalLoginAccounts.Errors.ProviderFailed));
        }
        await signIn.SignInAsync(outcome.User, isPersistent: true, authenticationMethod: Scheme);
        metrics.Login(Scheme, true);
        await audit.RecordAsync(http, Audit.AuditActions.SignIn, target: $"user:{outcome.User.Id}", detail: Scheme,
            actorId: outcome.User.Id, actorEmail: outcome.User.Email);
        return TypedResults.Redirect(http.Request.PathBase + returnUrl);
    }

    /// <summary>A path on this site only: absolute URLs, protocol-relative <c>//host</c> and <c>/\host</c> fall back to <c>/</c>.</summary>
    public static string LocalReturnUrl(string? url) =>
        url is { Length: > 0 and <= 2048 }
        && url[0] == '/'
        && (url.Length == 1 || (url[1] != '/' && url[1] != '\\'))
        && !url.Any(c => char.IsControl(c) || c == '\\')
            ? url
            : "/";

    /// <summary>Back to the web app, which shows the sign-in screen; the code says what went wrong.</summary>
    private static string ErrorRedirect(string code) => $"/?login_error={Uri.EscapeDataString(code)}";

    private static ProblemHttpResult NotConfigured() =>
        TypedResults.Problem(Problems.Create(StatusCodes.Status404NotFound, "not_found", "External sign-in is not configured",
            "This server has no OpenID Connect provider (OIDC_AUTHORITY and OIDC_CLIENT_ID are not set)."));

    /// <summary>Tells the operator at start that sign-in is on, with which provider (never the secret).</summary>
    private sealed class StartupNotice(ILogger<StartupNotice> logger, Uri authority, string clientId) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            logger.LogInformation("OpenID Connect sign-in is enabled: authority {Authority}, client {ClientId}", authority, clientId);
            if (authority.Scheme == Uri.UriSchemeHttp && !authority.IsLoopback)
            {
                logger.LogWarning("OIDC_AUTHORITY uses plain http on a non-loopback address: use https unless the provider is on a private network.");
            }
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
