using System.Runtime.CompilerServices;
using System.Security.Claims;

namespace Jackcwf.Api.Accounts;

/// <summary>
/// An API key's caller: built once for a key and a version of its account (<see cref="KeyOwner"/> and
/// <see cref="UserAccess"/> are replaced, never changed, when either changes) and shared by that key's
/// requests, instead of five claims, their copies, an identity and a principal per request. It is
/// read-only: adding an identity or a claim throws. <see cref="FindFirst(string)"/> reads its claims
/// without the enumerators <see cref="ClaimsPrincipal"/> allocates on every call.
/// </summary>
public sealed class ApiKeyPrincipal : ClaimsPrincipal
{
    // Keyed by the cached key entry: an entry goes with the key's cache entry (expired or revoked).
    private static readonly ConditionalWeakTable<KeyOwner, ApiKeyPrincipal> s_principals = new();

    private readonly Claim[] _claims;
    private readonly ReadOnlyIdentity _identity;
    private readonly UserAccess _user;

    private ApiKeyPrincipal(ReadOnlyIdentity identity, UserAccess user) : base(identity)
    {
        _claims = [.. identity.Claims];
        _identity = identity;
        _user = user;
        identity.Seal();
    }

    /// <summary>The principal of <paramref name="owner"/>'s key for this version of its account.</summary>
    public static ApiKeyPrincipal For(KeyOwner owner, UserAccess user, string authenticationType)
    {
        if (s_principals.TryGetValue(owner, out var cached) && ReferenceEquals(cached._user, user))
        {
            return cached;
        }
        var claims = new List<Claim>(4 + user.Roles.Count)
        {
            new(ClaimTypes.NameIdentifier, user.UserId.ToString()),
            new(ClaimTypes.Name, user.Email),
            new(ClaimTypes.Email, user.Email),
            new(ApiKeyClaims.KeyId, owner.KeyId.ToString()),
        };
        claims.AddRange(user.Roles.Select(r => new Claim(ClaimTypes.Role, r)));
        var principal = new ApiKeyPrincipal(new ReadOnlyIdentity(claims, authenticationType), user);
        s_principals.AddOrUpdate(owner, principal);
        return principal;
    }

    /// <summary>The one identity (what the default primary-identity selector picks, without its enumerator).</summary>
    public override System.Security.Principal.IIdentity? Identity => _identity;

    /// <summary>As <see cref="ClaimsPrincipal.FindFirst(string)"/> (the claim type compared ignoring case), over the one identity.</summary>
    public override Claim? FindFirst(string type)
    {
        ArgumentNullException.ThrowIfNull(type);
        foreach (var claim in _claims)
        {
            if (string.Equals(claim.Type, type, StringComparison.OrdinalIgnoreCase))
            {
                return claim;
            }
        }
        return null;
    }

    public override void AddIdentity(ClaimsIdentity identity) => throw Shared();

    public override void AddIdentities(IEnumerable<ClaimsIdentity> identities) => throw Shared();

    private static InvalidOperationException Shared() => new("An API key's principal is shared by its requests and cannot be changed.");

    private sealed class ReadOnlyIdentity(IEnumerable<Claim> claims, string authenticationType) : ClaimsIdentity(claims, authenticationType)
    {
        private bool _sealed;

        public void Seal() => _sealed = true;

        public override void AddClaim(Claim claim)
        {
            if (_sealed)
            {
                throw Shared();
            }
            base.AddClaim(claim);
        }

        public override void AddClaims(IEnumerable<Claim?> claims)
        {
            if (_sealed)
            {
                throw Shared();
            }
            base.AddClaims(claims);
        }

        public override void RemoveClaim(Claim? claim) => throw Shared();

        public override bool TryRemoveClaim(Claim? claim) => throw Shared();
    }
}
