using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Jackcwf.Api.Data.EntityConfigurations;

internal sealed class MessageConfiguration : IEntityTypeConfiguration<Message>
{
    public void Configure(EntityTypeBuilder<Message> e)
    {
        e.ToTable("messages");
        e.HasKey(m => m.Id);
        e.Property(m => m.Role).HasMaxLength(16);
        e.Property(m => m.Status).HasMaxLength(16);
        e.Property(m => m.Model).HasMaxLength(200);
        e.Property(m => m.RequestedModel).HasMaxLength(200);
        e.Property(m => m.ErrorCode).HasMaxLength(64);
        e.Property(m => m.ErrorDetail).HasMaxLength(2000);
        e.Property(m => m.OwnerInstance).HasMaxLength(128);
        e.Property(m => m.CostUsd).HasPrecision(18, 8);
        e.HasIndex(m => new { m.ConversationId, m.CreatedAt });
        // The lease sweeper's (Chat/LeaseSweeper.cs: streaming with an expired lease): only running
        // generations are in it, so a stored message, its final UPDATE and all history add no entry.
        e.HasIndex(m => m.LeaseExpiresAt).HasFilter("\"Status\" = 'streaming'");
        // Search reads a user's newest messages only (LimitsOptions.SearchMaxMessages).
        e.HasIndex(m => new { m.UserId, m.CreatedAt });
    }
}
