using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Jackcwf.Api.Data.EntityConfigurations;

internal sealed class IdempotencyRecordConfiguration : IEntityTypeConfiguration<IdempotencyRecord>
{
    public void Configure(EntityTypeBuilder<IdempotencyRecord> e)
    {
        e.ToTable("idempotency_keys");
        e.HasKey(r => new { r.UserId, r.Key });
        e.Property(r => r.Key).HasMaxLength(200);
        e.Property(r => r.RequestHash).HasMaxLength(64);
        e.Property(r => r.Route).HasMaxLength(64);
        e.HasIndex(r => r.CreatedAt);
    }
}
