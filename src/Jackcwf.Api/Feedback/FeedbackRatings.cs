namespace Jackcwf.Api.Feedback;

public static class FeedbackRatings
{
    public const string Up = "up";
    public const string Down = "down";
}
