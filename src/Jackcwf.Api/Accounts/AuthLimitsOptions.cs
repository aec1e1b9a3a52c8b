namespace Jackcwf.Api.Accounts;

/// <summary>Throttles of the unauthenticated account routes (the AUTH_* variables), per client address and per account.</summary>
public sealed class AuthLimitsOptions
{
    public const string Section = "AuthLimits";

    /// <summary>Sign-in, refresh and password-reset requests per client address per minute.</summary>
    public int RequestsPerMinutePerIp { get; set; } = 10;

    /// <summary>Failed sign-ins per client address per minute; 4× that per 15 minutes and 10× per hour (the delay grows).</summary>
    public int FailedSignInsPerIp { get; set; } = 5;

    /// <summary>Failed sign-ins per account per 15 minutes, from all addresses together.</summary>
    public int FailedSignInsPerAccount { get; set; } = 10;

    /// <summary>New accounts per client address per hour.</summary>
    public int RegistrationsPerHourPerIp { get; set; } = 10;

    /// <summary>Password-reset and confirmation emails per account per hour.</summary>
    public int EmailsPerHourPerAccount { get; set; } = 3;

    /// <summary>Unknown API keys per client address per minute before further keys from it are refused unchecked.</summary>
    public int FailedApiKeysPerMinutePerIp { get; set; } = 20;
}
