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
    public const int ChunkDelayMs = 60;

    private ApiProcess? _api;
    private IPlaywright? _playwright;
    private IBrowser? _browser;

    public ApiProcess Api => _api ?? throw new InvalidOperationException("The service did not start.");

    public IBrowser Browser => _browser ?? throw new InvalidOperationException("The browser did not start.");

    public Uri BaseUrl => Api.BaseUrl;

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
    /// model, and the built web app as web root (the service otherwise looks for wwwroot in its
    /// working directory).
    /// </summary>
    public static Dictionary<string, string?> ServiceEnvironment(IReadOnlyDictionary<string, string?>? overrides = null)
    {
        var environment = new Dictionary<string, string?>
        {
            ["ASPNETCORE_WEBROOT"] = WebRoot.Find(),
            ["DEMO_CHUNK_DELAY_MS"] = ChunkDelayMs.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["DATABASE_URL"] = null,
            ["REDIS_URL"] = null,
            ["OPENAI_API_KEY"] = null,
            ["ANTHROPIC_API_KEY"] = null,
            ["OLLAMA_BASE_URL"] = null,
            ["DEFAULT_MODEL"] = null,
            ["ALLOW_REGISTRATION"] = "true",
            ["LOG_LEVEL"] = "Warning",
        };
        foreach (var (name, value) in overrides ?? new Dictionary<string, string?>())
        {
            environment[name] = value;
        }

        return environment;
    }

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
    public static string Find()
    {
        var candidates = new List<string>();
        if (Environment.GetEnvironmentVariable("JACKCWF_WEB_ROOT") is { Length: > 0 } explicitRoot)
        {
            candidates.Add(explicitRoot);
        }

        // Next to the service binary (a publish output), or in the project folder of that binary.
        var dllDir = Path.GetDirectoryName(RepoPaths.ApiDll)!;
        candidates.Add(Path.Combine(dllDir, "wwwroot"));
        candidates.Add(Path.GetFullPath(Path.Combine(dllDir, "..", "..", "..", "wwwroot")));
        candidates.Add(Path.Combine(RepoPaths.Root, "src", "Jackcwf.Api", "wwwroot"));

        foreach (var candidate in candidates)
        {
            if (File.Exists(Path.Combine(candidate, "index.html")))
            {
                return Path.GetFullPath(candidate);
            }
        }

        throw new InvalidOperationException(
            "The web app is not built (no index.html in " + string.Join(", ", candidates) + "). " +
            "Build it with `cd web && npm ci && npm run build` (it writes src/Jackcwf.Api/wwwroot), or set JACKCWF_WEB_ROOT.");
    }
}
