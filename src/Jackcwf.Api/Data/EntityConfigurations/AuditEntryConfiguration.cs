using Jackcwf.Api.Audit;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Jackcwf.Api.Data.EntityConfigurations;

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
