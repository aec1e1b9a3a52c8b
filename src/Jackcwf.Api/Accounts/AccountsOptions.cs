namespace Jackcwf.Api.Accounts;

public sealed class AccountsOptions
{
    public const string Section = "Accounts";
    public bool AllowRegistration { get; set; } = true;
}
