using System.Security.Cryptography;
using Jackcwf.Api.Data;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;

namespace Jackcwf.Api.Accounts;

/// <summary>
/// The one-time token that lets the first account be created from another machine. It is protected
/// with the shared Data Protection key ring, so a token printed by any replica works on every replica,
/// and it stops working the moment the first account exists.
/// </summary>
public sealed class SetupToken(IDataProtectionProvider protection)
{
    public const string Header = "X-Setup-Token";
    private const string Payload = "first-administrator";
    private readonly IDataProtector _protector = protection.CreateProtector("Jackcwf.FirstAdministrator.v1");

    public string Issue() => _protector.Protect(Payload);

    public bool IsValid(string? token)
    {
        if (string.IsNullOrWhiteSpace(token) || token.Length > 1000)
        {
            return false;
        }
        try
        {
            return _protector.Unprotect(token.Trim()) == Payload;
        }
        catch (CryptographicException)
        {
            return false;
        }
    }
}

/// <summary>
/// Prints the setup token once the schema is current, while no account exists. Only the first
/// account may be created remotely with it; from the server itself (loopback) no token is needed.
/// </summary>
internal sealed class SetupTokenNotice(IServiceScopeFactory scopes, SchemaState schema, SetupToken token, ILogger<SetupTokenNotice> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Start-up only: the migration runs in the background and this waits for it (and for the
        // first readiness answer), then ends.
        await schema.WhenStartedAsync(stoppingToken);
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            if (await scope.ServiceProvider.GetRequiredService<AppDbContext>().Users.AnyAsync(stoppingToken))
            {
                return;
            }
            logger.LogWarning(
                "No account exists yet. Create the administrator from this machine (http://localhost), or from anywhere with the header {Header}: {Token} on POST /api/auth/register. The token stops working once the first account exists.",
                SetupToken.Header, token.Issue());
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogWarning("Could not check for a first account ({Error}); create it from this machine (http://localhost)", e.GetType().Name);
        }
    }
}
