using System.Text.Json;
using Jackcwf.Testing;
using Microsoft.Playwright;

namespace Jackcwf.BrowserTests;

/// <summary>
/// Runs axe-core (the web app's dev dependency, installed by `npm ci` in web/) against the current
/// page and lists the WCAG 2 A/AA violations it finds.
/// </summary>
public static class Accessibility
{
    private static readonly Lazy<string> AxeSource = new(() =>
    {
        var path = Path.Combine(RepoPaths.Root, "web", "node_modules", "axe-core", "axe.min.js");
        return File.Exists(path)
            ? File.ReadAllText(path)
            : throw new InvalidOperationException($"axe-core is not installed ({path} is missing); run `cd web && npm ci`.");
    });

    public static async Task<IReadOnlyList<string>> ViolationsAsync(IPage page)
    {
        // Evaluated through the browser's debugging protocol, so the page's CSP does not block it.
        if (!await page.EvaluateAsync<bool>("() => typeof window.axe !== 'undefined'"))
        {
            await page.EvaluateAsync(AxeSource.Value);
        }

        var result = await page.EvaluateAsync<JsonElement>(
            """
            async () => {
              const r = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
              return r.violations.map(v => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | ')}`);
            }
            """);
        return result.EnumerateArray().Select(v => v.GetString() ?? "").ToList();
    }

    public static async Task AssertNoViolationsAsync(IPage page)
    {
        var violations = await ViolationsAsync(page);
        Assert.True(violations.Count == 0, $"accessibility violations on {page.Url}:\n{string.Join("\n", violations)}");
    }
}
