namespace Jackcwf.Api.Files;

public static class FileStatuses
{
    public const string Processing = "processing";
    public const string Ready = "ready";
    public const string Failed = "failed";
}
