using System.Net.Http.Json;
using Jackcwf.Testing;
using Microsoft.Playwright;

namespace Jackcwf.BrowserTests;

/// <summary>
/// Starts the built service (SQLite, the demo model streaming word by word) with the built web app
/// as its web root, and Debian's Chromium headless. Each test gets its own browser context, so
/// cookies and storage never leak between tests.
/// </summary>
public sealed class BrowserFixture : IAsyncLifetime
{
    public const string ChromiumPath = "/usr/bin/chromium";

    /// <summary>Delay between the demo model's words: slow enough to see an answer grow, fast enough for a short run.</summary>
    public const int ChunkDelayMs = 40;

    private ApiProcess? _api;
    private IPlaywright? _playwright;
    private IBrowser? _browser;

    public ApiProcess Api => _api ?? throw new InvalidOperationException("The service did not start.");

    public IBrowser Browser => _browser ?? throw new InvalidOperationException("The browser did not start.");

    public Uri BaseUrl => Api.BaseUrl;

    /// <summary>The administrator, registered before any test runs (password <see cref="ChatUi.Password"/>).</summary>
    public string AdminEmail { get; } = ChatUi.NewEmail("admin");

    public async Task RegisterViaApiAsync(string email)
    {
        using var http = Api.CreateClient();
        using var response = await http.PostAsJsonAsync("/api/auth/register", new { email, password = ChatUi.Password });
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"Registering {email} failed: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        }
    }

    /// <summary>An HTTP client signed in as <paramref name="email"/> with a bearer token.</summary>
    public async Task<HttpClient> ApiClientAsync(string email)
    {
        var http = Api.CreateClient();
        using var login = await http.PostAsJsonAsync("/api/auth/login", new { email, password = ChatUi.Password });
        login.EnsureSuccessStatusCode();
        var token = (await login.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>()).GetProperty("accessToken").GetString();
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        return http;
    }

    /// <summary>Where screenshots of the main screens go: SCREENSHOTS_DIR, else artifacts/screenshots in the repository.</summary>
    public string ScreenshotDirectory { get; } = Path.GetFullPath(
        Environment.GetEnvironmentVariable("SCREENSHOTS_DIR") is { Length: > 0 } dir ? dir : Path.Combine(RepoPaths.Root, "artifacts", "screenshots"));

    public async ValueTask InitializeAsync()
    {
        if (!File.Exists(ChromiumPath))
        {
            throw new InvalidOperationException(
                $"Chromium is not installed at {ChromiumPath}. Install it with `apt-get install -y chromium` (tests/apt-packages.txt lists it, and the test command installs it).");
        }

        // Two shared cores and password hashing make some steps slow; wait for what a person would wait for.
        Assertions.SetDefaultExpectTimeout(15_000);
        _api = await ApiProcess.StartAsync(new ApiProcessOptions { Environment = ServiceEnvironment() });

        // The first account becomes the administrator: take it here, so that every account a test
        // registers is an ordinary user whatever order the tests run in.
        await RegisterViaApiAsync(AdminEmail);

        _playwright = await Playwright.CreateAsync();
        _browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });
    }

    /// <summary>
    /// The service's settings for these tests: SQLite in the process's own folder, only the demo
    /// model, and the built web app (see <see cref="WebRoot.Override"/>).
    /// </summary>
    private static Dictionary<string, string?> ServiceEnvironment() => new()
    {
        ["ASPNETCORE_WEBROOT"] = WebRoot.Override(),
        ["DEMO_CHUNK_DELAY_MS"] = ChunkDelayMs.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["DATABASE_URL"] = null,
        ["REDIS_URL"] = null,
        ["OPENAI_API_KEY"] = null,
        ["ANTHROPIC_API_KEY"] = null,
        ["OLLAMA_BASE_URL"] = null,
        ["DEFAULT_MODEL"] = null,
        ["ALLOW_REGISTRATION"] = "true",
        ["LOG_LEVEL"] = "Warning",
        // Per user: only a user's own identical question is answered from it (the usage page shows the savings).
        ["RESPONSE_CACHE"] = "exact",
        // A stop (the restart test, the end of the run) cuts running answers at once and stores them interrupted.
        ["SHUTDOWN_DRAIN_DELAY_SECONDS"] = "0",
        ["GRACEFUL_SHUTDOWN_TIMEOUT"] = "0",
    };

    /// <summary>A fresh context (own cookies) with a page on the app's origin.</summary>
    public async Task<IPage> NewPageAsync(int width = 1280, int height = 800, ColorScheme colorScheme = ColorScheme.Light, Uri? baseUrl = null)
    {
        if (Api.HasExited)
        {
            throw new InvalidOperationException($"The service exited with code {Api.ExitCode}. Output:\n{Api.Logs}");
        }

        var context = await Browser.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = (baseUrl ?? BaseUrl).ToString(),
            ViewportSize = new ViewportSize { Width = width, Height = height },
            ColorScheme = colorScheme,
            Locale = "en-US",
            TimezoneId = "UTC",
        });
        context.SetDefaultTimeout(15_000);
        return await context.NewPageAsync();
    }

    public async Task ScreenshotAsync(IPage page, string name)
    {
        Directory.CreateDirectory(ScreenshotDirectory);
        await page.ScreenshotAsync(new PageScreenshotOptions
        {
            Path = Path.Combine(ScreenshotDirectory, name + ".png"),
            Animations = ScreenshotAnimations.Disabled,
            Caret = ScreenshotCaret.Hide,
        });
    }

    public async ValueTask DisposeAsync()
    {
        if (_browser is not null)
        {
            await _browser.CloseAsync();
        }

        _playwright?.Dispose();
        if (_api is not null)
        {
            await _api.DisposeAsync();
        }
    }
}

/// <summary>Finds the built web app (index.html plus assets) that the service should serve.</summary>
public static class WebRoot
{
    /// <summary>
    /// <c>null</c> when the service will find the app by itself (the build copies wwwroot beside the
    /// binary); otherwise the folder to pass as ASPNETCORE_WEBROOT: JACKCWF_WEB_ROOT when set, else
    /// the project's wwwroot that <c>npm run build</c> in web/ writes.
    /// </summary>
    public static string? Override()
    {
        if (Environment.GetEnvironmentVariable("JACKCWF_WEB_ROOT") is { Length: > 0 } explicitRoot)
        {
            return File.Exists(Path.Combine(explicitRoot, "index.html"))
                ? Path.GetFullPath(explicitRoot)
                : throw new InvalidOperationException($"JACKCWF_WEB_ROOT={explicitRoot} has no index.html; build the web app into it first.");
        }

        var besideBinary = Path.Combine(Path.GetDirectoryName(RepoPaths.ApiDll)!, "wwwroot");
        if (File.Exists(Path.Combine(besideBinary, "index.html")))
        {
            return null;
        }

        var project = Path.Combine(RepoPaths.Root, "src", "Jackcwf.Api", "wwwroot");
        if (File.Exists(Path.Combine(project, "index.html")))
        {
            return project;
        }

        throw new InvalidOperationException(
            $"The web app is not built (no index.html in {besideBinary} or {project}). " +
            "Build it with `cd web && npm ci && npm run build` (it writes src/Jackcwf.Api/wwwroot) before building the service, or set JACKCWF_WEB_ROOT.");
    }
}
