using Jackcwf.Api.Feedback;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Jackcwf.Api.Data.EntityConfigurations;

internal sealed class MessageFeedbackConfiguration : IEntityTypeConfiguration<MessageFeedback>
{
    public void Configure(EntityTypeBuilder<MessageFeedback> e)
    {
        e.ToTable("message_feedback");
        e.HasKey(f => f.MessageId);
        e.Property(f => f.Model).HasMaxLength(200);
        e.Property(f => f.Rating).HasMaxLength(8);
        e.Property(f => f.Comment).HasMaxLength(FeedbackApi.MaxCommentLength);
        e.HasIndex(f => f.UserId);
        // The administrators' per-model counts read one period.
        e.HasIndex(f => f.UpdatedAt);
        // Goes with its message (and so with its conversation).
        e.HasOne<Message>().WithOne().HasForeignKey<MessageFeedback>(f => f.MessageId).OnDelete(DeleteBehavior.Cascade);
        e.HasOne<AppUser>().WithMany().HasForeignKey(f => f.UserId).OnDelete(DeleteBehavior.Cascade);
    }
}
