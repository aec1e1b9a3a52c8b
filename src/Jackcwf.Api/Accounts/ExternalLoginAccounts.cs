using System.Security.Claims;
using Jackcwf.Api.Data;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Accounts;

/// <summary>What the provider says about the user (raw OpenID Connect claim names).</summary>
public sealed record ExternalIdentity(string? Subject, string? Email, bool EmailVerified)
{
    public static ExternalIdentity From(ClaimsPrincipal principal)
    {
        var verified = principal.FindAll("email_verified").ToList();
        return new ExternalIdentity(
            principal.FindFirstValue("sub"),
            principal.FindFirstValue("email")?.Trim() is { Length: > 0 } email ? email : null,
            // The ID token and the userinfo answer may both carry it; all must agree (true, or "true" from some providers).
            verified.Count > 0 && verified.All(c => bool.TryParse(c.Value, out var v) && v));
    }
}

public sealed record ExternalLoginOutcome(AppUser? User, string? Error);

/// <summary>
/// Maps a provider's user to a local account: by the stored external login (provider + subject)
/// first, else by an email the provider has verified (linking it), else a new account.
/// </summary>
public sealed class ExternalLoginAccounts(
    UserManager<AppUser> users,
    SignInManager<AppUser> signIn,
    IOptions<AccountsOptions> accounts,
    IOptions<ExternalLoginOptions> options,
    ILogger<ExternalLoginAccounts> logger)
{
    /// <summary>The codes the web app receives in <c>?login_error=</c>.</summary>
    public static class Errors
    {
        public const string ProviderFailed = "external_login_failed";
        public const string ProviderUnavailable = "provider_unavailable";
        public const string EmailRequired = "email_required";
        public const string EmailNotVerified = "email_not_verified";
        public const string LocalEmailUnconfirmed = "local_email_unconfirmed";
        public const string SetupRequired = "setup_required";
        public const string LinkedToAnotherLogin = "account_linked_elsewhere";
        public const string RegistrationClosed = "registration_closed";
        public const string AccountDisabled = "account_disabled";
        public const string AccountLocked = "account_locked";
        public const string CreateFailed = "account_creation_failed";
    }

    /// <param name="fromLoopback">The browser is on the server itself: only then may single sign-on create the very first account.</param>
    public async Task<ExternalLoginOutcome> FindOrCreateAsync(ExternalIdentity identity, bool fromLoopback = false)
    {
        if (string.IsNullOrEmpty(identity.Subject))
        {
            return Refuse(Errors.ProviderFailed, "the provider sent no subject");
        }
        var user = await users.FindByLoginAsync(ExternalLogin.Scheme, identity.Subject);
        var how = "existing external login";
        if (user is null)
        {
            if (identity.Email is null)
            {
                return Refuse(Errors.EmailRequired, "the provider sent no email (request the email scope)");
            }
            user = await users.FindByEmailAsync(identity.Email);
            if (user is not null)
            {
                // Linking on an unverified address would let anyone who can type an email at the provider take over the account.
                if (!identity.EmailVerified)
                {
                    return Refuse(Errors.EmailNotVerified, "the email matches a local account but the provider has not verified it");
                }
                // Anyone can register a password account under someone else's address; only an address the local
                // account has proven it owns may be taken over by the provider's user.
                if (!user.EmailConfirmed)
                {
                    return Refuse(Errors.LocalEmailUnconfirmed, "the email matches a local account whose address was never confirmed");
                }
                if ((await users.GetLoginsAsync(user)).Any(l => l.LoginProvider == ExternalLogin.Scheme))
                {
                    return Refuse(Errors.LinkedToAnotherLogin, "the matching local account is already linked to another user of the provider");
                }
                how = "linked by verified email";
            }
            else
            {
                var any = users.Users.Any();
                if (!any && !fromLoopback)
                {
                    return Refuse(Errors.SetupRequired, "no account exists yet: the first account is created from the server itself or with the setup token");
                }
                if (!accounts.Value.AllowRegistration && any)
                {
                    return Refuse(Errors.RegistrationClosed, "open registration is off and no local account matches");
                }
                user = new AppUser { UserName = identity.Email, Email = identity.Email, EmailConfirmed = identity.EmailVerified };
                var created = await users.CreateAsync(user);
                if (!created.Succeeded)
                {
                    return Refuse(Errors.CreateFailed, string.Join("; ", created.Errors.Select(e => e.Code)));
                }
                how = "new account";
            }
            var added = await users.AddLoginAsync(user, new UserLoginInfo(ExternalLogin.Scheme, identity.Subject, options.Value.EffectiveDisplayName));
            if (!added.Succeeded)
            {
                return Refuse(Errors.CreateFailed, string.Join("; ", added.Errors.Select(e => e.Code)));
            }
        }
        if (user.IsDisabled || !await signIn.CanSignInAsync(user))
        {
            return Refuse(Errors.AccountDisabled, "the local account is disabled");
        }
        if (await users.IsLockedOutAsync(user))
        {
            return Refuse(Errors.AccountLocked, "the local account is locked out");
        }
        logger.LogInformation("OpenID Connect sign-in of user {UserId} ({How})", user.Id, how);
        return new ExternalLoginOutcome(user, null);
    }

    private ExternalLoginOutcome Refuse(string code, string reason)
    {
        logger.LogInformation("OpenID Connect sign-in refused ({Code}): {Reason}", code, reason);
        return new ExternalLoginOutcome(null, code);
    }
}
