using System.Collections.Concurrent;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Jackcwf.Api.Data;
using Jackcwf.Api.ErrorHandling;
using Jackcwf.Api.Telemetry;
using Microsoft.AspNetCore.Authentication;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Accounts;

public static class ApiKeyClaims
{
    public const string KeyId = "jackcwf:key_id";

    public static Guid? ApiKeyId(this ClaimsPrincipal user) =>
        Guid.TryParse(user.FindFirstValue(KeyId), out var id) ? id : null;
}

/// <summary>Tells every replica that something cached changed (a key revoked, a user disabled).</summary>
public interface IInvalidationBus
{
    Task PublishAsync(string topic, Guid id);

    void Subscribe(string topic, Action<Guid> handler);
}

public sealed class InProcessInvalidationBus : IInvalidationBus
{
    private readonly ConcurrentDictionary<string, List<Action<Guid>>> _handlers = new();

    public Task PublishAsync(string topic, Guid id)
    {
        if (_handlers.TryGetValue(topic, out var list))
        {
            foreach (var h in list.ToArray())
            {
                h(id);
            }
        }
        return Task.CompletedTask;
    }

    public void Subscribe(string topic, Action<Guid> handler) =>
        _handlers.AddOrUpdate(topic, _ => [handler], (_, l) => { lock (l) { l.Add(handler); } return l; });
}

public sealed record UserAccess(Guid UserId, string Email, bool IsDisabled, decimal? MonthlyBudgetUsd, IReadOnlyList<string> Roles, string? SecurityStamp = null);

public sealed record KeyOwner(Guid KeyId, Guid UserId);

/// <summary>
/// What a request needs to know about its caller without a database read: whether the account is
/// disabled, its budget, its security stamp, and which API keys exist. Entries live 30 seconds and are
/// dropped on every replica as soon as an administrator or the owner changes them (through
/// <see cref="IInvalidationBus"/>). Unknown keys are remembered in a bounded cache (count and time), so
/// random keys cost neither unbounded memory nor a query each.
/// </summary>
public sealed class UserAccessCache
{
    public const string UserTopic = "user";
    public const string KeyTopic = "apikey";
    private static readonly long TtlMs = 30_000;

    private readonly ConcurrentDictionary<Guid, (UserAccess? Access, long Expires)> _users = new();
    public const int UnknownKeyCapacity = 10_000;
    private static readonly TimeSpan UnknownKeyTtl = TimeSpan.FromSeconds(30);
    private readonly ConcurrentDictionary<string, (KeyOwner Owner, long Expires)> _keys = new(StringComparer.Ordinal);
    private readonly Microsoft.Extensions.Caching.Memory.MemoryCache _unknownKeys = new(new Microsoft.Extensions.Caching.Memory.MemoryCacheOptions
    {
        SizeLimit = UnknownKeyCapacity,
        CompactionPercentage = 0.25,
    });
    private readonly ConcurrentDictionary<Guid, long> _revokedKeys = new();
    private readonly IServiceScopeFactory _scopes;
    private readonly JackcwfMetrics _metrics;

    public UserAccessCache(IServiceScopeFactory scopes, IInvalidationBus bus, JackcwfMetrics metrics)
    {
        _scopes = scopes;
        _metrics = metrics;
        bus.Subscribe(UserTopic, id => _users.TryRemove(id, out _));
        bus.Subscribe(KeyTopic, id =>
        {
            _revokedKeys[id] = Environment.TickCount64;
            foreach (var (hash, entry) in _keys)
            {
                if (entry.Owner.KeyId == id)
                {
                    _keys.TryRemove(hash, out _);
                }
            }
        });
    }

    public async ValueTask<UserAccess?> GetAsync(Guid userId)
    {
        var now = Environment.TickCount64;
        if (_users.TryGetValue(userId, out var hit) && hit.Expires > now)
        {
            return hit.Access;
        }
        await using var scope = _scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        var user = await db.Users.AsNoTracking().Where(u => u.Id == userId)
            .Select(u => new { u.Email, u.IsDisabled, u.MonthlyBudgetUsd, u.SecurityStamp }).FirstOrDefaultAsync();
        UserAccess? access = null;
        if (user is not null)
        {
            var roles = await (from ur in db.UserRoles join r in db.Roles on ur.RoleId equals r.Id where ur.UserId == userId select r.Name!).ToListAsync();
            access = new UserAccess(userId, user.Email ?? "", user.IsDisabled, user.MonthlyBudgetUsd, roles, user.SecurityStamp);
        }
        _users[userId] = (access, now + TtlMs);
        return access;
    }

    /// <summary>Number of unknown keys remembered now (at most <see cref="UnknownKeyCapacity"/>).</summary>
    public long UnknownKeyCount => _unknownKeys.Count;

    /// <summary>
    /// True while the account exists, is enabled, the key (if the request used one) is not revoked, and
    /// the session's security stamp (cookie or bearer token) is still the account's: logout, sign-out
    /// everywhere, a new password and disabling all renew it.
    /// </summary>
    public async ValueTask<bool> IsAllowedAsync(ClaimsPrincipal principal)
    {
        if (principal.ApiKeyId() is { } keyId && _revokedKeys.ContainsKey(keyId))
        {
            return false;
        }
        if (await GetAsync(principal.Id()) is not { IsDisabled: false } access)
        {
            return false;
        }
        var stamp = principal.FindFirstValue(SecurityStampClaim);
        return stamp is null || access.SecurityStamp is null || stamp == access.SecurityStamp;
    }

    /// <summary>Identity's default security-stamp claim type.</summary>
    public const string SecurityStampClaim = "AspNet.Identity.SecurityStamp";

    public async ValueTask<KeyOwner?> FindKeyAsync(string hash)
    {
        var now = Environment.TickCount64;
        if (_keys.TryGetValue(hash, out var hit) && hit.Expires > now)
        {
            _metrics.Cache("api_key", hit: true);
            return hit.Owner;
        }
        if (_unknownKeys.TryGetValue(hash, out _))
        {
            _metrics.Cache("api_key", hit: true);
            return null;
        }
        _metrics.Cache("api_key", hit: false);
        await using var scope = _scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        var owner = await db.ApiKeys.AsNoTracking().Where(k => k.Hash == hash).Select(k => new KeyOwner(k.Id, k.UserId)).FirstOrDefaultAsync();
        if (owner is null)
        {
            using var entry = _unknownKeys.CreateEntry(hash);
            entry.Size = 1;
            entry.AbsoluteExpirationRelativeToNow = UnknownKeyTtl;
            entry.Value = true;
        }
        else
        {
            _keys[hash] = (owner, now + TtlMs);
        }
        return owner;
    }
}

/// <summary>Authenticates <c>Authorization: Bearer jk-…</c> personal API keys.</summary>
public sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder,
    UserAccessCache cache, ApiKeyUsageTracker usage, JackcwfMetrics metrics, AuthThrottle throttle)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";
    public const string KeyPrefix = "jk-";
    /// <summary>Set when the caller's address sent too many unknown keys; the access middleware answers 429.</summary>
    public const string ThrottledItem = "jackcwf.apikey.throttled";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var header = Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer " + KeyPrefix, StringComparison.Ordinal))
        {
            return AuthenticateResult.NoResult();
        }
        var key = header["Bearer ".Length..].Trim();
        var client = AuthRoutes.ClientKey(Context);
        if (await throttle.CheckApiKeyFailuresAsync(client) is { } wait)
        {
            // Guessing keys: no lookup at all until the window has room again.
            metrics.LimitRefused("api_key_failures");
            Context.Items[ThrottledItem] = new Limits.LimitRefusal("api_key_failures", wait, "Too many unknown API keys",
                $"This address sent too many unknown API keys. Try again in {Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds))} s.");
            return AuthenticateResult.Fail("Too many unknown API keys from this address.");
        }
        if (key.Length > 200 || await cache.FindKeyAsync(ApiKeysApi.Hash(key)) is not { } owner
            || await cache.GetAsync(owner.UserId) is not { } user)
        {
            metrics.Login("api_key", success: false);
            await throttle.RecordApiKeyFailureAsync(client);
            return AuthenticateResult.Fail("Unknown or revoked API key.");
        }
        usage.Touch(owner.KeyId);
        var claims = new List<Claim>
        {
            new(ClaimTypes.NameIdentifier, user.UserId.ToString()),
            new(ClaimTypes.Name, user.Email),
            new(ClaimTypes.Email, user.Email),
            new(ApiKeyClaims.KeyId, owner.KeyId.ToString()),
        };
        claims.AddRange(user.Roles.Select(r => new Claim(ClaimTypes.Role, r)));
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(new ClaimsIdentity(claims, SchemeName)), SchemeName));
    }
}

/// <summary>Records keys' last-used time at most once a minute per key, off the request path.</summary>
public sealed class ApiKeyUsageTracker(IServiceScopeFactory scopes, TimeProvider time, ILogger<ApiKeyUsageTracker> logger) : BackgroundService
{
    private readonly ConcurrentDictionary<Guid, long> _pending = new();
    private readonly ConcurrentDictionary<Guid, long> _written = new();

    public void Touch(Guid keyId)
    {
        var now = Environment.TickCount64;
        if (!_written.TryGetValue(keyId, out var last) || now - last > 60_000)
        {
            _pending[keyId] = now;
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(5));
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            foreach (var id in _pending.Keys.ToArray())
            {
                _pending.TryRemove(id, out _);
                _written[id] = Environment.TickCount64;
                try
                {
                    await using var scope = scopes.CreateAsyncScope();
                    var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
                    var now = time.UtcNowForStorage();
                    await db.ApiKeys.Where(k => k.Id == id).ExecuteUpdateAsync(u => u.SetProperty(k => k.LastUsedAt, now), stoppingToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    logger.LogWarning("Could not record API key use: {Error}", ex.GetType().Name);
                }
            }
        }
    }
}

public sealed record CreateKeyRequest(string? Name);

public sealed record CreatedKey(Guid Id, string Name, string Prefix, string Key, DateTime CreatedAt);

public sealed record KeySummary(Guid Id, string Name, string Prefix, DateTime CreatedAt, DateTime? LastUsedAt);

public sealed record KeyList(IReadOnlyList<KeySummary> Items);

public static class ApiKeysApi
{
    public static IEndpointRouteBuilder MapApiKeysApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/keys").WithTags("Accounts").RequireAuthorization();
        api.MapPost("/", CreateKeyAsync).WithName("CreateApiKey").WithSummary("Create a personal API key; the key is shown in this answer only.");
        api.MapGet("/", ListKeysAsync).WithName("ListApiKeys").WithSummary("The caller's API keys (without the keys themselves).");
        api.MapDelete("/{id:guid}", DeleteKeyAsync).WithName("DeleteApiKey").WithSummary("Revoke a key; it is refused on the next request, on every replica.");
        return app;
    }

    public static string Hash(string key) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    public static async Task<Microsoft.AspNetCore.Http.HttpResults.Results<Microsoft.AspNetCore.Http.HttpResults.Created<CreatedKey>, Microsoft.AspNetCore.Http.HttpResults.ValidationProblem>> CreateKeyAsync(
        HttpContext http, ClaimsPrincipal user, AppDbContext db, Audit.IAuditLog audit, TimeProvider time, CreateKeyRequest? request, CancellationToken ct)
    {
        var name = request?.Name?.Trim();
        if (string.IsNullOrEmpty(name) || name.Length > 100)
        {
            return Problems.Invalid("name", "is required and at most 100 characters");
        }
        var secret = ApiKeyAuthenticationHandler.KeyPrefix + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', 'A').Replace('/', 'B');
        var key = new ApiKey
        {
            Id = time.NewId(), UserId = user.Id(), Name = name, Prefix = secret[..11], Hash = Hash(secret), CreatedAt = time.UtcNowForStorage(),
        };
        db.ApiKeys.Add(key);
        await db.SaveChangesAsync(ct);
        await audit.RecordAsync(http, Audit.AuditActions.ApiKeyCreated, target: $"api_key:{key.Id}", detail: $"prefix {key.Prefix}", ct: ct);
        return TypedResults.Created($"/api/keys/{key.Id}", new CreatedKey(key.Id, key.Name, key.Prefix, secret, key.CreatedAt));
    }

    public static async Task<Microsoft.AspNetCore.Http.HttpResults.Ok<KeyList>> ListKeysAsync(ClaimsPrincipal user, AppDbContext db, CancellationToken ct)
    {
        var id = user.Id();
        var keys = await db.ApiKeys.AsNoTracking().Where(k => k.UserId == id).OrderByDescending(k => k.CreatedAt)
            .Select(k => new KeySummary(k.Id, k.Name, k.Prefix, k.CreatedAt, k.LastUsedAt)).ToListAsync(ct);
        return TypedResults.Ok(new KeyList(keys));
    }

    /// <summary>Revoking a key also stops its gateway calls still streaming, on every replica (see <see cref="AccessRevocations"/>).</summary>
    public static async Task<Microsoft.AspNetCore.Http.HttpResults.Results<Microsoft.AspNetCore.Http.HttpResults.NoContent, Microsoft.AspNetCore.Http.HttpResults.ProblemHttpResult>> DeleteKeyAsync(
        HttpContext http, ClaimsPrincipal user, Guid id, AppDbContext db, IInvalidationBus bus, Audit.IAuditLog audit, CancellationToken ct)
    {
        var userId = user.Id();
        if (await db.ApiKeys.Where(k => k.Id == id && k.UserId == userId).ExecuteDeleteAsync(ct) == 0)
        {
            return Problems.NotFound("API key");
        }
        await bus.PublishAsync(UserAccessCache.KeyTopic, id);
        await audit.RecordAsync(http, Audit.AuditActions.ApiKeyRevoked, target: $"api_key:{id}", ct: ct);
        return TypedResults.NoContent();
    }
}
