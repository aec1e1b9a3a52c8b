namespace Jackcwf.Api.Audit;

/// <summary>
/// One security-relevant action. Append-only: nothing updates a row; retention deletes old ones.
/// Every text field is filled by the service from ids, emails and fixed words, never from a
/// request body, so no password, key or token can reach it.
/// </summary>
public sealed class AuditEntry
{
    public Guid Id { get; set; }
    public DateTime CreatedAt { get; set; }
    public string Action { get; set; } = "";
    public string Outcome { get; set; } = AuditOutcomes.Success;
    /// <summary>Who acted; null when nobody is signed in (a failed sign-in, a registration).</summary>
    public Guid? ActorId { get; set; }
    /// <summary>The actor's email at the time, or the email a failed sign-in tried.</summary>
    public string? ActorEmail { get; set; }
    /// <summary>What was acted on, as <c>kind:id</c> (<c>user:…</c>, <c>api_key:…</c>, <c>conversation:…</c>).</summary>
    public string? Target { get; set; }
    public string? Ip { get; set; }
    public string? UserAgent { get; set; }
    /// <summary>A short fact about the change (a new budget, a role name, a failure reason code).</summary>
    public string? Detail { get; set; }
}
