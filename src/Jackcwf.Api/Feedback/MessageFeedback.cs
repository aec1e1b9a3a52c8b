namespace Jackcwf.Api.Feedback;

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
