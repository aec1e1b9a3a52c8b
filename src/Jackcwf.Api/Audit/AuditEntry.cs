using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

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

public static class AuditOutcomes
{
    public const string Success = "success";
    public const string Failure = "failure";
}

/// <summary>The action names: a stable vocabulary for filters and dashboards.</summary>
public static class AuditActions
{
    public const string SignIn = "auth.sign_in";
    public const string Register = "auth.register";
    public const string RoleGranted = "user.role_granted";
    public const string RoleRevoked = "user.role_revoked";
    public const string UserDisabled = "user.disabled";
    public const string UserEnabled = "user.enabled";
    public const string BudgetChanged = "user.budget_changed";
    public const string ApiKeyCreated = "api_key.created";
    public const string ApiKeyRevoked = "api_key.revoked";
    public const string ShareCreated = "share.created";
    public const string ShareRevoked = "share.revoked";
    public const string FileUploaded = "file.uploaded";
    public const string FileDeleted = "file.deleted";
    public const string AccountDeleted = "account.deleted";
    public const string DataExported = "account.exported";
    public const string SetupTokenUsed = "setup.token_used";
}

internal sealed class AuditEntryConfiguration : IEntityTypeConfiguration<AuditEntry>
{
    public void Configure(EntityTypeBuilder<AuditEntry> e)
    {
        e.ToTable("audit_log");
        e.HasKey(a => a.Id);
        e.Property(a => a.Action).HasMaxLength(64);
        e.Property(a => a.Outcome).HasMaxLength(16);
        e.Property(a => a.ActorEmail).HasMaxLength(256);
        e.Property(a => a.Target).HasMaxLength(128);
        e.Property(a => a.Ip).HasMaxLength(64);
        e.Property(a => a.UserAgent).HasMaxLength(256);
        e.Property(a => a.Detail).HasMaxLength(256);
        // No foreign key to the user: the record of what an account did outlives the account.
        e.HasIndex(a => a.CreatedAt);
        e.HasIndex(a => new { a.ActorId, a.CreatedAt });
        e.HasIndex(a => new { a.Action, a.CreatedAt });
    }
}
