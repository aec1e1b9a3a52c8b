namespace Jackcwf.Api.Feedback;

public sealed record FeedbackDto(string Rating, string? Comment, DateTime UpdatedAt)
{
    public static FeedbackDto From(MessageFeedback f) => new(f.Rating, f.Comment, f.UpdatedAt);
}

public sealed record FeedbackRequest(string? Rating, string? Comment);
