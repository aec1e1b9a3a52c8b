using System.Net;
using System.Net.Sockets;
using Jackcwf.Api.Limits;
using Jackcwf.Api.Telemetry;
using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Accounts;

/// <summary>
/// The sign-in, registration, refresh and reset throttles. Counters live in the shared
/// <see cref="ILimitStore"/> (Redis with the backplane), so every replica sees the same attempts.
/// Failed sign-ins slow down one address progressively (1 minute, then 15 minutes, then an hour);
/// the per-account limit is a sliding window, so it never locks anyone out for longer than 15 minutes.
/// </summary>
public sealed class AuthThrottle(ILimitStore store, IOptions<AuthLimitsOptions> options, JackcwfMetrics metrics)
{
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);
    private static readonly TimeSpan Quarter = TimeSpan.FromMinutes(15);
    private static readonly TimeSpan Hour = TimeSpan.FromHours(1);

    private (int Limit, TimeSpan Window)[] IpFailureTiers
    {
        get
        {
            var n = options.Value.FailedSignInsPerIp;
            return [(n, Minute), (n * 4, Quarter), (n * 10, Hour)];
        }
    }

    /// <summary>Counts one request of <paramref name="route"/> from the address; a refusal when over the limit.</summary>
    public async ValueTask<LimitRefusal?> HitAsync(string route, string client)
    {
        var o = options.Value;
        var (limit, window) = route == AuthRoutes.Register ? (o.RegistrationsPerHourPerIp, Hour) : (o.RequestsPerMinutePerIp, Minute);
        return await store.HitAsync($"auth:{route}:ip:{client}", limit, window) is { } wait
            ? Refused("auth_ip", wait, route == AuthRoutes.Register
                ? $"At most {limit} accounts can be created per hour from one address."
                : $"At most {limit} requests per minute from one address reach this route.")
            : null;
    }

    /// <summary>Before checking a password: refused while the address or the account has failed too often.</summary>
    public async ValueTask<LimitRefusal?> CheckSignInAsync(string client, string? account)
    {
        foreach (var (limit, window) in IpFailureTiers)
        {
            if (await store.PeekAsync($"auth:fail:ip:{window.TotalMinutes}:{client}", limit, window) is { } wait)
            {
                return Refused("auth_failures_ip", wait, "Too many failed sign-ins from this address; each further failure makes the wait longer.");
            }
        }
        if (account is not null
            && await store.PeekAsync($"auth:fail:account:{account}", options.Value.FailedSignInsPerAccount, Quarter) is { } accountWait)
        {
            return Refused("auth_failures_account", accountWait, "Too many failed sign-ins for this account; it opens again by itself.");
        }
        return null;
    }

    public async ValueTask RecordFailedSignInAsync(string client, string? account)
    {
        foreach (var (_, window) in IpFailureTiers)
        {
            await store.HitAsync($"auth:fail:ip:{window.TotalMinutes}:{client}", int.MaxValue, window);
        }
        if (account is not null)
        {
            await store.HitAsync($"auth:fail:account:{account}", int.MaxValue, Quarter);
        }
    }

    /// <summary>Reset and confirmation emails per target account, so nobody can flood a mailbox.</summary>
    public async ValueTask<LimitRefusal?> HitEmailAsync(string account) =>
        await store.HitAsync($"auth:email:account:{account}", options.Value.EmailsPerHourPerAccount, Hour) is { } wait
            ? Refused("auth_email", wait, $"At most {options.Value.EmailsPerHourPerAccount} emails per hour are sent to one account.")
            : null;

    /// <summary>Null while the address may still try unknown API keys (checked before the key is looked up), else the wait.</summary>
    public async ValueTask<TimeSpan?> CheckApiKeyFailuresAsync(string client)
    {
        var (bucket, limit) = ApiKeyFailureBucket(client);
        return await store.PeekAsync(bucket, limit, Minute);
    }

    /// <summary>
    /// The address's unknown-key window (one minute, as the request limits'), so a request with a key this
    /// replica already knows has it checked in the same step as its request limits (<see cref="LimitGuard.CheckRateAsync"/>).
    /// </summary>
    public (string Bucket, int Limit) ApiKeyFailureBucket(string client) => ($"auth:apikey:ip:{client}", options.Value.FailedApiKeysPerMinutePerIp);

    public LimitRefusal ApiKeyFailuresRefusal(TimeSpan wait)
    {
        metrics.LimitRefused("api_key_failures");
        return new LimitRefusal("api_key_failures", wait, "Too many unknown API keys",
            $"This address sent too many unknown API keys. Try again in {Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds))} s.");
    }

    public ValueTask RecordApiKeyFailureAsync(string client) =>
        IgnoreResult(store.HitAsync($"auth:apikey:ip:{client}", int.MaxValue, Minute));

    private static async ValueTask IgnoreResult(ValueTask<TimeSpan?> hit) => await hit;

    private LimitRefusal Refused(string limit, TimeSpan wait, string detail)
    {
        metrics.LimitRefused(limit);
        return new LimitRefusal(limit, wait, "Too many attempts", $"{detail} Try again in {Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds))} s.");
    }
}

/// <summary>The account routes, by the route pattern of the matched endpoint (never by the request's spelling of the path).</summary>
public static class AuthRoutes
{
    public const string Register = "register";
    public const string Login = "login";
    public const string Refresh = "refresh";
    public const string ForgotPassword = "forgotPassword";
    public const string ResetPassword = "resetPassword";
    public const string ResendConfirmation = "resendConfirmationEmail";
    public const string ConfirmEmail = "confirmEmail";
    public const string Manage = "manage";

    /// <summary>The route of the endpoint routing chose: "/api/auth/register" gives <see cref="Register"/>.</summary>
    public static string? Of(HttpContext http)
    {
        if (http.GetEndpoint() is not RouteEndpoint { RoutePattern.RawText: { } raw })
        {
            return null;
        }
        var rest = raw.TrimEnd('/');
        const string prefix = "/api/auth/";
        if (!rest.StartsWith(prefix, StringComparison.Ordinal))
        {
            return null;
        }
        rest = rest[prefix.Length..];
        return rest.StartsWith("manage", StringComparison.Ordinal) ? Manage : rest;
    }

    /// <summary>
    /// The caller's address as a limit bucket: IPv4 as is, IPv6 by its /64 (one subscriber's usual
    /// allocation, so rotating within it does not reset the limits).
    /// </summary>
    public static string ClientKey(HttpContext http)
    {
        var ip = http.Connection.RemoteIpAddress;
        if (ip is null)
        {
            return "unknown";
        }
        if (ip.IsIPv4MappedToIPv6)
        {
            ip = ip.MapToIPv4();
        }
        if (ip.AddressFamily == AddressFamily.InterNetworkV6)
        {
            var bytes = ip.GetAddressBytes();
            Array.Clear(bytes, 8, 8);
            return new IPAddress(bytes) + "/64";
        }
        return ip.ToString();
    }

    /// <summary>The request came from this machine (after trusted proxies' forwarded headers were applied).</summary>
    public static bool IsLoopback(HttpContext http) =>
        http.Connection.RemoteIpAddress is { } ip && IPAddress.IsLoopback(ip.IsIPv4MappedToIPv6 ? ip.MapToIPv4() : ip);
}
