using System.Net;
using System.Text.Json;

namespace Jackcwf.OidcTests;

public sealed record Me(Guid Id, string Email, IReadOnlyList<string> Roles, bool IsAdmin);

/// <summary>The user's side of an external sign-in: the service's button, the provider's pages, back to the app.</summary>
public static class SignInFlow
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>
    /// Clicks "Sign in with …" (<c>/api/auth/external/oidc?returnUrl=…</c>), signs in on the provider's page,
    /// allows the consent screen when shown, and returns the page the browser ends on.
    /// </summary>
    public static async Task<Page> SignInAsync(Browser browser, Uri serviceBase, ProviderAccount account, string returnUrl = "/")
    {
        var login = await OpenProviderLoginAsync(browser, serviceBase, returnUrl);
        var next = await browser.SubmitFormAsync(login, new Dictionary<string, string> { ["login"] = account.Login, ["password"] = account.Password });
        if (next.Body.Contains("<title>Authorize</title>", StringComparison.Ordinal))
        {
            next = await browser.SubmitFormAsync(next);
        }
        return next;
    }

    public static async Task<Page> OpenProviderLoginAsync(Browser browser, Uri serviceBase, string returnUrl = "/")
    {
        var login = await browser.GetAsync(new Uri(serviceBase, "api/auth/external/oidc?returnUrl=" + Uri.EscapeDataString(returnUrl)));
        Assert.True(login.Status == HttpStatusCode.OK && login.Body.Contains("<title>Sign in</title>", StringComparison.Ordinal),
            $"expected the provider's sign-in page, got {(int)login.Status} at {login.Url}:\n{login.Body}");
        return login;
    }

    /// <summary>The signed-in user as the web app sees it, or null when the browser has no session.</summary>
    public static async Task<Me?> MeAsync(Browser browser, Uri serviceBase)
    {
        var page = await browser.GetAsync(new Uri(serviceBase, "api/me"), followRedirects: false);
        if (page.Status == HttpStatusCode.Unauthorized)
        {
            return null;
        }
        Assert.True(page.Status == HttpStatusCode.OK, $"GET /api/me: {(int)page.Status} {page.Body}");
        return JsonSerializer.Deserialize<Me>(page.Body, Json);
    }

    public static Dictionary<string, string> Query(Uri url) =>
        url.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries)
            .Select(p => p.Split('=', 2))
            .ToDictionary(p => Uri.UnescapeDataString(p[0]), p => p.Length > 1 ? Uri.UnescapeDataString(p[1].Replace('+', ' ')) : "");
}
