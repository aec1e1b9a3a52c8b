using Jackcwf.Api.Configuration;
using Jackcwf.Api.Data;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Identity;

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
        s.AddAuthorizationBuilder().AddPolicy(AdminApi.Policy, p => p.RequireRole(AppRole.Admin));
        s.AddSingleton<InProcessInvalidationBus>();
        s.AddSingleton<IInvalidationBus>(sp => sp.GetService<StackExchange.Redis.IConnectionMultiplexer>() is { } redis
            ? new RedisInvalidationBus(redis, sp.GetRequiredService<InProcessInvalidationBus>(), sp.GetRequiredService<ILogger<RedisInvalidationBus>>())
            : sp.GetRequiredService<InProcessInvalidationBus>());
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
        s.AddDataProtection()
            .SetApplicationName("jackcwf")
            .PersistKeysToDbContext<AppDbContext>();
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

/// <summary>The first account created becomes the administrator.</summary>
public sealed class AppUserManager(
    IUserStore<AppUser> store,
    Microsoft.Extensions.Options.IOptions<IdentityOptions> optionsAccessor,
    IPasswordHasher<AppUser> passwordHasher,
    IEnumerable<IUserValidator<AppUser>> userValidators,
    IEnumerable<IPasswordValidator<AppUser>> passwordValidators,
    ILookupNormalizer keyNormalizer,
    IdentityErrorDescriber errors,
    IServiceProvider services,
    ILogger<UserManager<AppUser>> logger,
    RoleManager<AppRole> roles)
    : UserManager<AppUser>(store, optionsAccessor, passwordHasher, userValidators, passwordValidators, keyNormalizer, errors, services, logger)
{
    public override async Task<IdentityResult> CreateAsync(AppUser user)
    {
        user.CreatedAt = Clock.UtcNow();
        var result = await base.CreateAsync(user);
        if (!result.Succeeded)
        {
            return result;
        }
        var earlier = Users.Any(u => u.Id != user.Id && u.CreatedAt <= user.CreatedAt);
        if (!earlier)
        {
            if (!await roles.RoleExistsAsync(AppRole.Admin))
            {
                await roles.CreateAsync(new AppRole { Id = Clock.NewId(), Name = AppRole.Admin });
            }
            await AddToRoleAsync(user, AppRole.Admin);
            Logger.LogInformation("The first account was created and made administrator");
        }
        return result;
    }
}

/// <summary>Disabled accounts cannot sign in (password, refresh or cookie renewal).</summary>
public sealed class AppSignInManager(
    UserManager<AppUser> userManager,
    IHttpContextAccessor contextAccessor,
    IUserClaimsPrincipalFactory<AppUser> claimsFactory,
    Microsoft.Extensions.Options.IOptions<IdentityOptions> optionsAccessor,
    ILogger<SignInManager<AppUser>> logger,
    Microsoft.AspNetCore.Authentication.IAuthenticationSchemeProvider schemes,
    IUserConfirmation<AppUser> confirmation)
    : SignInManager<AppUser>(userManager, contextAccessor, claimsFactory, optionsAccessor, logger, schemes, confirmation)
{
    public override async Task<bool> CanSignInAsync(AppUser user) => !user.IsDisabled && await base.CanSignInAsync(user);
}
