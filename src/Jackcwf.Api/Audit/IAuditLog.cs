using Microsoft.EntityFrameworkCore;

namespace Jackcwf.Api.Audit;

/// <summary>The one way to write the audit log.</summary>
public interface IAuditLog
{
    /// <summary>
    /// Records an action by the signed-in user of <paramref name="http"/> (or <paramref name="actorId"/>
    /// when the request is not signed in yet, as on sign-in), with the client's address and user agent.
    /// </summary>
    /// <remarks><paramref name="anonymous"/> records no actor at all (an account that deleted itself).</remarks>
    Task RecordAsync(HttpContext http, string action, string outcome = AuditOutcomes.Success, string? target = null,
        string? detail = null, Guid? actorId = null, string? actorEmail = null, bool anonymous = false, CancellationToken ct = default);
}
