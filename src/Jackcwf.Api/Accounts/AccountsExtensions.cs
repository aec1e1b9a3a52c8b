using Jackcwf.Api.Audit;
using Jackcwf.Api.Configuration;
using Jackcwf.Api.Data;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Accounts;

public static class AccountsExtensions
{
    public const string SessionCookieName = "jackcwf.session";
    public const string CompositeScheme = "jackcwf";

    public static IHostApplicationBuilder AddAccounts(this IHostApplicationBuilder builder)
    {
        var s = builder.Services;
        s.AddIdentityApiEndpoints<AppUser>(o =>
            {
                o.User.RequireUniqueEmail = true;
                o.Password.RequiredLength = 8;
                o.Password.RequireDigit = true;
                o.Password.RequireLowercase = true;
                o.Password.RequireUppercase = true;
                o.Password.RequireNonAlphanumeric = false;
                o.Lockout.AllowedForNewUsers = true;
                o.Lockout.MaxFailedAccessAttempts = 5;
                o.Lockout.DefaultLockoutTimeSpan = TimeSpan.FromMinutes(5);
                o.SignIn.RequireConfirmedAccount = false;
            })
            .AddRoles<AppRole>()
            .AddUserManager<AppUserManager>()
            .AddSignInManager<AppSignInManager>()
            .AddEntityFrameworkStores<AppDbContext>();
        // A bearer token's ticket is read once a minute, not on every request (BearerTokenCache).
        s.PostConfigure<Microsoft.AspNetCore.Authentication.BearerToken.BearerTokenOptions>(IdentityConstants.BearerScheme,
            o => o.BearerTokenProtector = new BearerTokenCache(o.BearerTokenProtector));
        // One entry scheme: personal API keys (Bearer jk-…) or Identity's bearer tokens and session cookie.
        s.AddAuthentication(o =>
            {
                o.DefaultScheme = CompositeScheme;
                o.DefaultChallengeScheme = CompositeScheme;
            })
            .AddScheme<Microsoft.AspNetCore.Authentication.AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null)
            .AddPolicyScheme(CompositeScheme, "API key, bearer token or session cookie", o => o.ForwardDefaultSelector = ctx =>
                ctx.Request.Headers.Authorization.ToString().StartsWith("Bearer " + ApiKeyAuthenticationHandler.KeyPrefix, StringComparison.Ordinal)
                    ? ApiKeyAuthenticationHandler.SchemeName
                    // Identity's own composite of its bearer token and application cookie (its constant is internal).
                    : "Identity.BearerAndApplication");
        // Roles are read from the access cache, not from the token: a revoked administrator loses access at once.
        s.AddAuthorizationBuilder().AddPolicy(AdminApi.Policy, p => p.RequireAuthenticatedUser().RequireAssertion(async ctx =>
            ctx.Resource is HttpContext http
            && Guid.TryParse(ctx.User.FindFirst(System.Security.Claims.ClaimTypes.NameIdentifier)?.Value, out var userId)
            && await http.RequestServices.GetRequiredService<UserAccessCache>().GetAsync(userId) is { } access
            && access.Roles.Contains(AppRole.Admin)));
        s.AddSettings<AccountsOptions>(AccountsOptions.Section);
        s.AddSettings<AuthLimitsOptions>(AuthLimitsOptions.Section);
        s.AddSingleton<AuthThrottle>();
        s.AddSingleton<SetupToken>();
        s.AddHostedService<SetupTokenNotice>();
        s.AddSingleton<AccessRevocations>();
        s.AddHostedService<AccessSubscriptionsWarmUp>();
        // One replica's bus; AddBackplane replaces it with the Redis one (in either order).
        s.TryAddSingleton<InProcessInvalidationBus>();
        s.TryAddSingleton<IInvalidationBus>(sp => sp.GetRequiredService<InProcessInvalidationBus>());
        s.AddSingleton<UserAccessCache>();
        s.AddSingleton<ApiKeyUsageTracker>();
        s.AddHostedService(sp => sp.GetRequiredService<ApiKeyUsageTracker>());
        s.ConfigureApplicationCookie(o =>
        {
            o.Cookie.Name = SessionCookieName;
            o.Cookie.HttpOnly = true;
            o.Cookie.SameSite = SameSiteMode.Lax;
            // Secure whenever the request is HTTPS, including behind a proxy that says so in X-Forwarded-Proto.
            o.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
            o.ExpireTimeSpan = TimeSpan.FromDays(14);
            o.SlidingExpiration = true;
            o.Events.OnRedirectToLogin = ctx => { ctx.Response.StatusCode = StatusCodes.Status401Unauthorized; return Task.CompletedTask; };
            o.Events.OnRedirectToAccessDenied = ctx => { ctx.Response.StatusCode = StatusCodes.Status403Forbidden; return Task.CompletedTask; };
        });
        // One key ring in the database: tokens and cookies issued by one replica work on all, across deploys.
        // Its keys are encrypted with DATA_PROTECTION_KEY, so a database dump cannot forge sessions.
        s.AddDataProtection()
            .SetApplicationName("jackcwf")
            .PersistKeysToDbContext<AppDbContext>();
        s.AddSettings<KeyRingOptions>(KeyRingOptions.Section);
        s.AddSingleton<IValidateOptions<KeyRingOptions>, ValidateKeyRingOptions>();
        // Read from configuration, not IOptions<KeyRingOptions>: an invalid key is reported by the validator at start, not thrown here.
        s.AddOptions<KeyManagementOptions>().Configure<IConfiguration>((o, configuration) =>
        {
            if (KeyRingCipher.Parse(configuration[$"{KeyRingOptions.Section}:{nameof(KeyRingOptions.Key)}"] ?? "") is { } key)
            {
                o.XmlEncryptor = new KeyRingXmlEncryptor(key);
            }
        });
        // The key ring lives in the database, which is migrated in the background after start-up:
        // load it on first use instead of racing the migration at start.
        var warmUp = s.FirstOrDefault(d => d.ServiceType == typeof(IHostedService)
            && d.ImplementationType?.FullName == "Microsoft.AspNetCore.DataProtection.Internal.DataProtectionHostedService");
        if (warmUp is not null)
        {
            s.Remove(warmUp);
        }
        return builder;
    }
}

/// <summary>
/// The first account becomes the administrator: the one whose insert of the administrator role
/// succeeds (the role name is unique), so two registrations at once make exactly one administrator.
/// </summary>
public sealed class AppUserManager(
    IUserStore<AppUser> store,
    IOptions<IdentityOptions> optionsAccessor,
    IPasswordHasher<AppUser> passwordHasher,
    IEnumerable<IUserValidator<AppUser>> userValidators,
    IEnumerable<IPasswordValidator<AppUser>> passwordValidators,
    ILookupNormalizer keyNormalizer,
    IdentityErrorDescriber errors,
    IServiceProvider services,
    ILogger<UserManager<AppUser>> logger,
    RoleManager<AppRole> roles,
    AppDbContext db,
    IOptions<AccountsOptions> accounts,
    IHttpContextAccessor http,
    IAuditLog audit,
    TimeProvider time)
    : UserManager<AppUser>(store, optionsAccessor, passwordHasher, userValidators, passwordValidators, keyNormalizer, errors, services, logger)
{
    /// <summary>Set on a request that was let through only because no account existed yet.</summary>
    public const string FirstAccountAttempt = "jackcwf.first-account";

    /// <summary>Set when that request came from elsewhere than this machine and carried the one-time setup token.</summary>
    public const string SetupTokenPresented = "jackcwf.setup-token";

    public override async Task<IdentityResult> CreateAsync(AppUser user)
    {
        user.CreatedAt = time.UtcNowForStorage();
        var result = await base.CreateAsync(user);
        if (!result.Succeeded)
        {
            return result;
        }
        if (await TryBecomeFirstAdministratorAsync(user))
        {
            Logger.LogInformation("The first account was created and made administrator");
            if (http.HttpContext is { } context && context.Items.ContainsKey(SetupTokenPresented))
            {
                await audit.RecordAsync(context, AuditActions.SetupTokenUsed, target: $"user:{user.Id}", detail: AppRole.Admin,
                    actorId: user.Id, actorEmail: user.Email);
            }
            return result;
        }
        if (!accounts.Value.AllowRegistration && http.HttpContext?.Items.ContainsKey(FirstAccountAttempt) == true)
        {
            // Another first registration won at the same moment; with registration closed this one must not stay.
            await DeleteAsync(user);
            return IdentityResult.Failed(new IdentityError { Code = "RegistrationClosed", Description = "Registration is closed: another account became the administrator first." });
        }
        return result;
    }

    private async Task<bool> TryBecomeFirstAdministratorAsync(AppUser user)
    {
        if (await roles.RoleExistsAsync(AppRole.Admin))
        {
            return false;
        }
        var role = new AppRole { Id = time.NewId(), Name = AppRole.Admin };
        try
        {
            if (!(await roles.CreateAsync(role)).Succeeded)
            {
                return false;
            }
        }
        catch (DbUpdateException)
        {
            // The unique role name refused the second insert: another account is the first administrator.
            db.Entry(role).State = EntityState.Detached;
            return false;
        }
        await AddToRoleAsync(user, AppRole.Admin);
        return true;
    }
}

/// <summary>Disabled accounts cannot sign in (password, refresh or cookie renewal).</summary>
public sealed class AppSignInManager(
    UserManager<AppUser> userManager,
    IHttpContextAccessor contextAccessor,
    IUserClaimsPrincipalFactory<AppUser> claimsFactory,
    IOptions<IdentityOptions> optionsAccessor,
    ILogger<SignInManager<AppUser>> logger,
    Microsoft.AspNetCore.Authentication.IAuthenticationSchemeProvider schemes,
    IUserConfirmation<AppUser> confirmation)
    : SignInManager<AppUser>(userManager, contextAccessor, claimsFactory, optionsAccessor, logger, schemes, confirmation)
{
    public override async Task<bool> CanSignInAsync(AppUser user) => !user.IsDisabled && await base.CanSignInAsync(user);

    /// <summary>
    /// Never locks the account on failed passwords: a lock anyone can trigger would let them keep an
    /// administrator out for good. Failed sign-ins are throttled per address and account instead (<see cref="AuthThrottle"/>).
    /// </summary>
    public override Task<SignInResult> PasswordSignInAsync(AppUser user, string password, bool isPersistent, bool lockoutOnFailure) =>
        base.PasswordSignInAsync(user, password, isPersistent, lockoutOnFailure: false);
}
