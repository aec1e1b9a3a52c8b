using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Jackcwf.Api.Data.EntityConfigurations;

internal sealed class UsageRecordConfiguration : IEntityTypeConfiguration<UsageRecord>
{
    public void Configure(EntityTypeBuilder<UsageRecord> e)
    {
        e.ToTable("usage_records");
        e.HasKey(u => u.Id);
        e.Property(u => u.Model).HasMaxLength(200);
        e.Property(u => u.Source).HasMaxLength(16);
        e.Property(u => u.CostUsd).HasPrecision(18, 8);
        e.HasIndex(u => new { u.UserId, u.CreatedAt });
    }
}
