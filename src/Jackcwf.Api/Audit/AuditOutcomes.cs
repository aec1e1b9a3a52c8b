namespace Jackcwf.Api.Audit;

public static class AuditOutcomes
{
    public const string Success = "success";
    public const string Failure = "failure";
}
