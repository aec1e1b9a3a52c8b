using System.Collections.Concurrent;
using System.Security.Claims;
using Jackcwf.Api.Data;
using Jackcwf.Api.Telemetry;
using Microsoft.EntityFrameworkCore;

namespace Jackcwf.Api.Accounts;

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
    public ValueTask<bool> IsAllowedAsync(ClaimsPrincipal principal) =>
        IsAllowedAsync(principal.ApiKeyId(), principal.Id(), principal.FindFirstValue(SecurityStampClaim));

    /// <summary>
    /// <see cref="IsAllowedAsync(ClaimsPrincipal)"/> for one authenticated principal, its claims read once: a
    /// stream asks it before every event it writes (a word of a chat answer), where reading the claims each time
    /// allocated their enumerators and parsed the ids again.
    /// </summary>
    public Func<ValueTask<bool>> AllowedCheck(ClaimsPrincipal principal)
    {
        var (keyId, userId, stamp) = (principal.ApiKeyId(), principal.Id(), principal.FindFirstValue(SecurityStampClaim));
        return () => IsAllowedAsync(keyId, userId, stamp);
    }

    private async ValueTask<bool> IsAllowedAsync(Guid? keyId, Guid userId, string? stamp)
    {
        if (keyId is { } k && _revokedKeys.ContainsKey(k))
        {
            return false;
        }
        if (await GetAsync(userId) is not { IsDisabled: false } access)
        {
            return false;
        }
        return stamp is null || access.SecurityStamp is null || stamp == access.SecurityStamp;
    }

    /// <summary>Identity's default security-stamp claim type.</summary>
    public const string SecurityStampClaim = "AspNet.Identity.SecurityStamp";

    /// <summary>True when the key is held here as a valid key (no database read, no metric).</summary>
    public bool HoldsKey(string hash) => _keys.TryGetValue(hash, out var hit) && hit.Expires > Environment.TickCount64;

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
