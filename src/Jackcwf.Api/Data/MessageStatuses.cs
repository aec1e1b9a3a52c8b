namespace Jackcwf.Api.Data;

public static class MessageStatuses
{
    public const string Streaming = "streaming";
    public const string Complete = "complete";
    public const string Stopped = "stopped";
    public const string Interrupted = "interrupted";
    public const string Failed = "failed";
}
