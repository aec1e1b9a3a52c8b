using System.Security.Claims;

namespace Jackcwf.Api.Accounts;

public static class CurrentUser
{
    /// <summary>The signed-in user's id; endpoints that call this require authorization.</summary>
    public static Guid Id(this ClaimsPrincipal user) =>
        Guid.TryParse(user.FindFirstValue(ClaimTypes.NameIdentifier), out var id)
            ? id
            : throw new InvalidOperationException("The endpoint requires an authenticated user.");
}
