using System.Text.RegularExpressions;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Jackcwf.BrowserTests;

/// <summary>What a person does in the app, expressed through roles, labels and test ids.</summary>
public static class ChatUi
{
    public const string Password = "Corr3ct-Horse";

    public static string NewEmail(string who) => $"{who}-{Guid.NewGuid():N}@example.test";

    public static ILocator Composer(IPage page) => page.GetByLabel("Message", new() { Exact = true });

    public static ILocator SendButton(IPage page) => page.GetByRole(AriaRole.Button, new() { Name = "Send", Exact = true });

    public static ILocator StopButton(IPage page) => page.GetByRole(AriaRole.Button, new() { Name = "Stop", Exact = true });

    public static ILocator Messages(IPage page) => page.GetByTestId("message");

    public static ILocator AssistantMessages(IPage page) => page.Locator("[data-testid=message][data-role=assistant]");

    public static ILocator UserMessages(IPage page) => page.Locator("[data-testid=message][data-role=user]");

    public static ILocator Content(ILocator message) => message.GetByTestId("message-content");

    public static ILocator Conversations(IPage page) => page.GetByTestId("conversation");

    public static async Task RegisterAsync(IPage page, string email, string password = Password)
    {
        await page.GotoAsync("/");
        await page.GetByRole(AriaRole.Tab, new() { Name = "Register" }).ClickAsync();
        await page.GetByLabel("Email").FillAsync(email);
        await page.GetByLabel("Password").FillAsync(password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Create account" }).ClickAsync();
        await Expect(Composer(page)).ToBeVisibleAsync();
    }

    public static async Task SignInAsync(IPage page, string email, string password = Password)
    {
        await page.GotoAsync("/");
        await page.GetByLabel("Email").FillAsync(email);
        await page.GetByLabel("Password").FillAsync(password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in", Exact = true }).ClickAsync();
        await Expect(Composer(page)).ToBeVisibleAsync();
    }

    /// <summary>Types the message and sends it with Enter, as a person would.</summary>
    public static async Task SendAsync(IPage page, string text)
    {
        await Composer(page).FillAsync(text);
        await Composer(page).PressAsync("Enter");
    }

    public static async Task WaitForStatusAsync(ILocator message, string status, float timeoutMs = 30_000) =>
        await Expect(message).ToHaveAttributeAsync("data-status", status, new() { Timeout = timeoutMs });

    /// <summary>The visible text of a message, with whitespace runs collapsed as a reader sees them.</summary>
    public static async Task<string> TextOfAsync(ILocator message)
    {
        var content = Content(message);
        if (await content.CountAsync() == 0)
        {
            return "";
        }

        return Regex.Replace(await content.InnerTextAsync(), @"\s+", " ").Trim();
    }

    /// <summary>A long answer for the demo model: numbered words make gaps and repeats easy to see.</summary>
    public static string NumberedWords(int count, string prefix = "w") =>
        string.Join(' ', Enumerable.Range(1, count).Select(i => $"{prefix}{i:D3}"));
}
