using Jackcwf.Api.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Jackcwf.Api.Feedback;

public static class FeedbackRatings
{
    public const string Up = "up";
    public const string Down = "down";
}

/// <summary>
/// A thumbs up or down (and an optional comment) on one assistant message, by its owner. The model
/// that wrote the answer is copied in, so the per-model counts never read the messages table.
/// </summary>
public sealed class MessageFeedback
{
    public Guid MessageId { get; set; }
    public Guid UserId { get; set; }
    public Guid ConversationId { get; set; }
    public string Model { get; set; } = "";
    public string Rating { get; set; } = FeedbackRatings.Up;
    public string? Comment { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime UpdatedAt { get; set; }
}

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

public sealed record FeedbackDto(string Rating, string? Comment, DateTime UpdatedAt)
{
    public static FeedbackDto From(MessageFeedback f) => new(f.Rating, f.Comment, f.UpdatedAt);
}

public sealed record FeedbackRequest(string? Rating, string? Comment);
