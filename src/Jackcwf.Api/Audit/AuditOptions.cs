namespace Jackcwf.Api.Audit;

public sealed class AuditOptions
{
    public const string Section = "Audit";
    /// <summary>Entries older than this are deleted; 0 keeps them forever.</summary>
    public int RetentionDays { get; set; } = 365;
}
