using System.Net;
using System.Text.RegularExpressions;

namespace Jackcwf.OidcTests;

/// <summary>One answer the browser ended on, after following redirects.</summary>
public sealed record Page(Uri Url, HttpStatusCode Status, string Body, Uri? Location, IReadOnlyList<string> SetCookies);

/// <summary>
/// What a browser does during a sign-in, by hand: follows redirects across the service and the
/// provider, keeps cookies per site (RFC 6265, so Secure cookies only go over https), submits forms.
/// It only ever connects to 127.0.0.1: a redirect anywhere else ends the walk and is returned as is.
/// A "public" https origin can be mapped to a local service, the way a TLS-terminating proxy would.
/// </summary>
public sealed partial class Browser : IDisposable
{
    private readonly HttpClient _http = new(new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false })
    {
        Timeout = TimeSpan.FromSeconds(30),
    };
    private readonly Dictionary<string, (Uri Backend, IReadOnlyDictionary<string, string> Headers)> _proxies = new(StringComparer.OrdinalIgnoreCase);

    public CookieContainer Cookies { get; } = new();

    /// <summary>Every URL requested, in order (public URLs, as the user's address bar would show).</summary>
    public List<Uri> History { get; } = [];

    /// <summary>Every Set-Cookie header received, with the URL that sent it.</summary>
    public List<(Uri Url, string Header)> SetCookieLog { get; } = [];

    /// <summary>Requests to <paramref name="publicOrigin"/> go to <paramref name="backend"/> with <paramref name="headers"/> added.</summary>
    public void MapThroughProxy(Uri publicOrigin, Uri backend, IReadOnlyDictionary<string, string> headers) =>
        _proxies[publicOrigin.GetLeftPart(UriPartial.Authority)] = (backend, headers);

    public Task<Page> GetAsync(Uri url, bool followRedirects = true) => SendAsync(HttpMethod.Get, url, null, followRedirects);

    /// <summary>Fills the page's first POST form with <paramref name="fields"/> and submits it.</summary>
    public Task<Page> SubmitFormAsync(Page page, IReadOnlyDictionary<string, string>? fields = null)
    {
        var form = FormRegex().Match(page.Body);
        if (!form.Success)
        {
            throw new InvalidOperationException($"No POST form on {page.Url} ({(int)page.Status}):\n{page.Body}");
        }
        var action = new Uri(page.Url, WebUtility.HtmlDecode(form.Groups["action"].Value));
        return SendAsync(HttpMethod.Post, action, new FormUrlEncodedContent(fields ?? new Dictionary<string, string>()), followRedirects: true);
    }

    public async Task<Page> SendAsync(HttpMethod method, Uri url, HttpContent? content, bool followRedirects = true)
    {
        for (var hop = 0; hop < 20; hop++)
        {
            History.Add(url);
            using var request = new HttpRequestMessage(method, Route(url, out var extraHeaders)) { Content = content };
            foreach (var (name, value) in extraHeaders)
            {
                request.Headers.TryAddWithoutValidation(name, value);
            }
            var cookieHeader = Cookies.GetCookieHeader(url);
            if (cookieHeader.Length > 0)
            {
                request.Headers.TryAddWithoutValidation("Cookie", cookieHeader);
            }
            using var response = await _http.SendAsync(request);
            var setCookies = response.Headers.TryGetValues("Set-Cookie", out var values) ? values.ToList() : [];
            foreach (var setCookie in setCookies)
            {
                Cookies.SetCookies(url, setCookie);
                SetCookieLog.Add((url, setCookie));
            }
            var body = await response.Content.ReadAsStringAsync();
            var location = response.Headers.Location is { } l ? new Uri(url, l) : null;
            var page = new Page(url, response.StatusCode, body, location, setCookies);
            if (!followRedirects || location is null || (int)response.StatusCode is < 300 or > 399 || !CanReach(location))
            {
                return page;
            }
            if (response.StatusCode is HttpStatusCode.SeeOther || (method == HttpMethod.Post && (int)response.StatusCode is 301 or 302))
            {
                method = HttpMethod.Get;
                content = null;
            }
            url = location;
        }
        throw new InvalidOperationException($"More than 20 redirects:\n{string.Join("\n", History.TakeLast(20))}");
    }

    /// <summary>Whether a request there stays on this machine (loopback, or a public origin mapped to a local service).</summary>
    public bool CanReach(Uri url) =>
        _proxies.ContainsKey(url.GetLeftPart(UriPartial.Authority)) || (url.Scheme == Uri.UriSchemeHttp && url.Host == "127.0.0.1");

    private Uri Route(Uri url, out IReadOnlyDictionary<string, string> headers)
    {
        if (_proxies.TryGetValue(url.GetLeftPart(UriPartial.Authority), out var proxy))
        {
            headers = proxy.Headers;
            return new Uri(proxy.Backend, url.PathAndQuery);
        }
        if (!CanReach(url))
        {
            throw new InvalidOperationException($"The test browser only connects to 127.0.0.1, not {url}.");
        }
        headers = new Dictionary<string, string>();
        return url;
    }

    public void Dispose() => _http.Dispose();

    [GeneratedRegex("""<form[^>]*\smethod="post"[^>]*\saction="(?<action>[^"]+)"[^>]*>""", RegexOptions.IgnoreCase)]
    private static partial Regex FormRegex();
}
