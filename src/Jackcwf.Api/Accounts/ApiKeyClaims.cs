using System.Security.Claims;

namespace Jackcwf.Api.Accounts;

public static class ApiKeyClaims
{
    public const string KeyId = "jackcwf:key_id";

    public static Guid? ApiKeyId(this ClaimsPrincipal user) =>
        Guid.TryParse(user.FindFirstValue(KeyId), out var id) ? id : null;
}
