using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Caching.Memory;

namespace Jackcwf.Api.Accounts;

/// <summary>
/// Identity's access-token format with the tickets of tokens already read kept for a minute: a signed-in
/// client sends the same bearer token with every request, and reading it (Base64url, AES-CBC and HMAC over
/// the key ring, then the ticket's claims) was about 3 % of a chat message's CPU. Each request gets its own copy
/// of the ticket, as from a fresh read, and Identity's handler still checks the ticket's expiry on every
/// request. A session's sign-out, a new password or a disabled account never depended on reading the token:
/// the security stamp and the account are checked per request against <see cref="UserAccessCache"/>
/// (<c>UseAccessAndRateLimits</c>), which drops them on every replica at once. Only tokens that were read
/// successfully are kept, so random tokens cost the full read each and take no room.
/// </summary>
/// <remarks>
/// Hand-written because Identity has no cache of its own for bearer tokens (its format is replaceable:
/// <c>BearerTokenOptions.BearerTokenProtector</c>). Writing tokens (sign-in, refresh) goes to the inner format.
/// </remarks>
internal sealed class BearerTokenCache(ISecureDataFormat<AuthenticationTicket> inner) : ISecureDataFormat<AuthenticationTicket>
{
    /// <summary>Tokens kept at most (one a signed-in client using the API; the oldest are dropped first).</summary>
    public const int Capacity = 10_000;

    /// <summary>How long a token's ticket is kept after it was read.</summary>
    public static readonly TimeSpan Ttl = TimeSpan.FromMinutes(1);

    private readonly MemoryCache _tickets = new(new MemoryCacheOptions { SizeLimit = Capacity, CompactionPercentage = 0.25 });

    public string Protect(AuthenticationTicket data) => inner.Protect(data);

    public string Protect(AuthenticationTicket data, string? purpose) => inner.Protect(data, purpose);

    public AuthenticationTicket? Unprotect(string? protectedText) => Unprotect(protectedText, null);

    public AuthenticationTicket? Unprotect(string? protectedText, string? purpose)
    {
        if (protectedText is null || purpose is not null)
        {
            return inner.Unprotect(protectedText, purpose);
        }
        if (_tickets.TryGetValue(protectedText, out AuthenticationTicket? known))
        {
            return known!.Clone();
        }
        var ticket = inner.Unprotect(protectedText);
        if (ticket is null)
        {
            return null;
        }
        using (var entry = _tickets.CreateEntry(protectedText))
        {
            entry.Size = 1;
            entry.AbsoluteExpirationRelativeToNow = Ttl;
            entry.Value = ticket.Clone();
        }
        return ticket;
    }
}
