using Microsoft.AspNetCore.Identity;

namespace Jackcwf.Api.Data;

public sealed class AppRole : IdentityRole<Guid>
{
    public const string Admin = "admin";
}
