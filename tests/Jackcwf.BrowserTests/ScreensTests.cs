using Microsoft.Playwright;
using static Jackcwf.BrowserTests.ChatUi;
using static Microsoft.Playwright.Assertions;

namespace Jackcwf.BrowserTests;

/// <summary>The main screens, checked for what matters on each and saved as screenshots.</summary>
public sealed class ScreensTests(BrowserFixture fixture)
{
    private const string MarkdownQuestion =
        "Show me **Markdown** with a list and code:\n\n" +
        "- streamed answers\n- resumable after a drop\n\n" +
        "```csharp\npublic static int Add(int a, int b) => a + b; // sum\n```\n\n" +
        "See [the docs](https://example.com/docs).";

    [Fact]
    public async Task SignInScreenOffersSignInAndRegistrationWithLabelledFields()
    {
        var page = await fixture.NewPageAsync(1024, 700);
        await page.GotoAsync("/");
        await Expect(page.GetByLabel("Email")).ToBeVisibleAsync();
        await Expect(page.GetByLabel("Password")).ToBeVisibleAsync();
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Sign in", Exact = true })).ToBeVisibleAsync();

        await page.GetByLabel("Email").FillAsync("nobody@example.test");
        await page.GetByLabel("Password").FillAsync("Wrong-passw0rd");
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in", Exact = true }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("Wrong email or password");
        await Accessibility.AssertNoViolationsAsync(page);
        await fixture.ScreenshotAsync(page, "sign-in");

        // The server's password rules come back in words.
        await page.GetByRole(AriaRole.Tab, new() { Name = "Register" }).ClickAsync();
        await page.GetByLabel("Email").FillAsync(NewEmail("weak"));
        await page.GetByLabel("Password").FillAsync("alllowercase");
        await page.GetByRole(AriaRole.Button, new() { Name = "Create account" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("digit");
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task SigningOutAndBackInKeepsTheConversations()
    {
        var page = await fixture.NewPageAsync();
        var email = NewEmail("returning");
        await RegisterAsync(page, email);
        await SendAsync(page, "remember this");
        await WaitForStatusAsync(AssistantMessages(page).Last, "complete");

        await page.GetByRole(AriaRole.Button, new() { Name = "Sign out" }).ClickAsync();
        await Expect(page.GetByLabel("Email")).ToBeVisibleAsync();
        await page.ReloadAsync();
        await Expect(page.GetByLabel("Email")).ToBeVisibleAsync();

        await SignInAsync(page, email);
        await Expect(Conversations(page)).ToHaveCountAsync(1);
        await Conversations(page).First.GetByRole(AriaRole.Link).ClickAsync();
        await Expect(Content(AssistantMessages(page).Last)).ToHaveTextAsync("remember this");
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task AnswersRenderAsHighlightedMarkdownWithCopyButtonsInBothThemes()
    {
        var page = await fixture.NewPageAsync(1280, 800);
        await RegisterAsync(page, NewEmail("markdown"));
        await SendAsync(page, MarkdownQuestion);
        var answer = AssistantMessages(page).Last;
        await WaitForStatusAsync(answer, "complete");

        await Expect(answer.Locator("strong")).ToHaveTextAsync("Markdown");
        await Expect(answer.Locator("li")).ToHaveCountAsync(2);
        await Expect(answer.Locator("pre code .hljs-keyword").First).ToBeVisibleAsync();
        await Expect(answer.GetByRole(AriaRole.Button, new() { Name = "Copy csharp code" })).ToBeVisibleAsync();
        var link = answer.GetByRole(AriaRole.Link, new() { Name = "the docs" });
        await Expect(link).ToHaveAttributeAsync("target", "_blank");
        await Expect(link).ToHaveAttributeAsync("rel", new System.Text.RegularExpressions.Regex("noopener"));
        await Accessibility.AssertNoViolationsAsync(page);
        await fixture.ScreenshotAsync(page, "chat-markdown-light");

        await page.EmulateMediaAsync(new() { ColorScheme = ColorScheme.Dark });
        var background = await page.EvaluateAsync<string>("() => getComputedStyle(document.body).backgroundColor");
        Assert.NotEqual("rgb(255, 255, 255)", background);
        await Accessibility.AssertNoViolationsAsync(page);
        await fixture.ScreenshotAsync(page, "chat-markdown-dark");

        // The theme toggle overrides the system preference and is remembered.
        await page.GetByRole(AriaRole.Button, new() { Name = "System theme; switch to light theme" }).ClickAsync();
        Assert.Equal("rgb(255, 255, 255)", await page.EvaluateAsync<string>("() => getComputedStyle(document.body).backgroundColor"));
        await page.ReloadAsync();
        await Expect(Composer(page)).ToBeVisibleAsync();
        Assert.Equal("rgb(255, 255, 255)", await page.EvaluateAsync<string>("() => getComputedStyle(document.body).backgroundColor"));
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task EditingAMessageMakesABranchThatCanBeSwitchedBack()
    {
        var page = await fixture.NewPageAsync();
        await RegisterAsync(page, NewEmail("branch"));
        await SendAsync(page, "original question");
        await WaitForStatusAsync(AssistantMessages(page).Last, "complete");

        await UserMessages(page).First.GetByRole(AriaRole.Button, new() { Name = "Edit" }).ClickAsync();
        await page.GetByLabel("Edit message").FillAsync("edited question");
        await page.GetByRole(AriaRole.Button, new() { Name = "Save and send" }).ClickAsync();
        await WaitForStatusAsync(AssistantMessages(page).Last, "complete");
        await Expect(Messages(page)).ToHaveCountAsync(2);
        await Expect(AssistantMessages(page).Last).ToContainTextAsync("edited question");
        await Expect(UserMessages(page).First.GetByText("2/2")).ToBeVisibleAsync();

        await UserMessages(page).First.GetByRole(AriaRole.Button, new() { Name = "Previous version" }).ClickAsync();
        await Expect(UserMessages(page).First.GetByText("1/2")).ToBeVisibleAsync();
        await Expect(AssistantMessages(page).Last).ToContainTextAsync("original question");

        // Regenerating an answer adds a sibling answer to the same question.
        await AssistantMessages(page).Last.GetByRole(AriaRole.Button, new() { Name = "Regenerate" }).ClickAsync();
        await WaitForStatusAsync(AssistantMessages(page).Last, "complete");
        await Expect(AssistantMessages(page).Last.GetByText("2/2")).ToBeVisibleAsync();
        await Expect(AssistantMessages(page).Last).ToContainTextAsync("original question");

        // All branches survive a reload.
        await page.ReloadAsync();
        await Expect(Messages(page)).ToHaveCountAsync(2);
        await Expect(UserMessages(page).First.GetByText("2/2")).ToBeVisibleAsync();
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task OnAPhoneTheSidebarFoldsIntoAMenuAndNothingOverflows()
    {
        var page = await fixture.NewPageAsync(390, 844);
        await RegisterAsync(page, NewEmail("phone"));
        await SendAsync(page, MarkdownQuestion);
        await WaitForStatusAsync(AssistantMessages(page).Last, "complete");

        var search = page.GetByLabel("Search conversations");
        await Expect(search).Not.ToBeVisibleAsync();
        Assert.True(await page.EvaluateAsync<bool>("() => document.documentElement.scrollWidth <= window.innerWidth"), "the page must not scroll sideways at 390 px");
        await Accessibility.AssertNoViolationsAsync(page);
        await fixture.ScreenshotAsync(page, "phone-chat");

        await page.GetByRole(AriaRole.Button, new() { Name = "Open menu" }).ClickAsync();
        await Expect(search).ToBeVisibleAsync();
        await Expect(Conversations(page)).ToHaveCountAsync(1);
        await fixture.ScreenshotAsync(page, "phone-menu");
        await Conversations(page).First.GetByRole(AriaRole.Link).ClickAsync();
        await Expect(search).Not.ToBeVisibleAsync();
        await page.Context.CloseAsync();
    }
}
