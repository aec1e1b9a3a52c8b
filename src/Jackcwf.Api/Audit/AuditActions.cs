namespace Jackcwf.Api.Audit;

/// <summary>The action names: a stable vocabulary for filters and dashboards.</summary>
public static class AuditActions
{
    public const string SignIn = "auth.sign_in";
    public const string Register = "auth.register";
    public const string RoleGranted = "user.role_granted";
    public const string RoleRevoked = "user.role_revoked";
    public const string UserDisabled = "user.disabled";
    public const string UserEnabled = "user.enabled";
    public const string BudgetChanged = "user.budget_changed";
    public const string ApiKeyCreated = "api_key.created";
    public const string ApiKeyRevoked = "api_key.revoked";
    public const string ShareCreated = "share.created";
    public const string ShareRevoked = "share.revoked";
    public const string FileUploaded = "file.uploaded";
    public const string FileDeleted = "file.deleted";
    public const string AccountDeleted = "account.deleted";
    public const string DataExported = "account.exported";
    public const string SetupTokenUsed = "setup.token_used";
}
