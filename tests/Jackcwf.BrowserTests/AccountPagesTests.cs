using System.Net;
using System.Net.Http.Headers;
using Microsoft.Playwright;
using static Jackcwf.BrowserTests.ChatUi;
using static Microsoft.Playwright.Assertions;

namespace Jackcwf.BrowserTests;

public sealed class AccountPagesTests(BrowserFixture fixture)
{
    [Fact]
    public async Task AnApiKeyIsShownOnceWorksAsABearerTokenAndStopsWorkingWhenRevoked()
    {
        var page = await fixture.NewPageAsync();
        await RegisterAsync(page, NewEmail("keys"));
        await Expect(page.GetByRole(AriaRole.Link, new() { Name = "Admin" })).ToHaveCountAsync(0);

        await page.GetByRole(AriaRole.Link, new() { Name = "API keys" }).ClickAsync();
        await page.GetByLabel("Key name").FillAsync("laptop script");
        await page.GetByRole(AriaRole.Button, new() { Name = "Create key" }).ClickAsync();
        var shown = page.GetByLabel("New API key “laptop script”");
        await Expect(shown).ToHaveValueAsync(new System.Text.RegularExpressions.Regex("^jk-"));
        await Expect(page.GetByText("it is shown only once")).ToBeVisibleAsync();
        var key = await shown.InputValueAsync();
        await Accessibility.AssertNoViolationsAsync(page);
        await fixture.ScreenshotAsync(page, "api-keys");

        using var http = fixture.Api.CreateClient();
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        var ct = TestContext.Current.CancellationToken;
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/api/me", ct)).StatusCode);

        // After a reload only the name and the prefix remain.
        await page.ReloadAsync();
        await Expect(page.GetByRole(AriaRole.Row).Filter(new() { HasText = "laptop script" })).ToBeVisibleAsync();
        await Expect(page.GetByLabel("New API key “laptop script”")).ToHaveCountAsync(0);
        Assert.DoesNotContain(key, await page.ContentAsync(), StringComparison.Ordinal);

        await page.GetByRole(AriaRole.Button, new() { Name = "Revoke key “laptop script”" }).ClickAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Revoke “laptop script” now" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Row).Filter(new() { HasText = "laptop script" })).ToHaveCountAsync(0);
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("/api/me", ct)).StatusCode);
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task UsagePageShowsTheDaysTokensTheModelThatUsedThemAndWhatTheCacheSaved()
    {
        var page = await fixture.NewPageAsync();
        await RegisterAsync(page, NewEmail("usage"));
        await SendAsync(page, "count my tokens please");
        await WaitForStatusAsync(AssistantMessages(page).Last, "complete");
        await SendAsync(page, "and these too");
        await WaitForStatusAsync(AssistantMessages(page).Last, "complete");
        // The same first question in a new chat is answered from the response cache.
        await page.GetByRole(AriaRole.Link, new() { Name = "+ New chat" }).ClickAsync();
        await Expect(Messages(page)).ToHaveCountAsync(0);
        await SendAsync(page, "count my tokens please");
        await WaitForStatusAsync(AssistantMessages(page).Last, "complete");

        await page.GetByRole(AriaRole.Link, new() { Name = "Usage" }).ClickAsync();
        await Expect(page.GetByTestId("usage-requests")).ToHaveTextAsync("3");
        await Expect(page.GetByTestId("usage-cached")).ToHaveTextAsync("1");
        await Expect(page.GetByTestId("usage-tokens-saved")).ToHaveTextAsync(new System.Text.RegularExpressions.Regex("^[1-9][0-9,]*$"));
        await Expect(page.GetByRole(AriaRole.Row).Filter(new() { HasText = "demo/echo" })).ToBeVisibleAsync();
        await Expect(page.GetByRole(AriaRole.Img, new() { Name = "Tokens per day" })).ToBeVisibleAsync();
        await Expect(page.Locator("figure svg[role=img] rect[height]:not([height='0'])").First).ToBeVisibleAsync();
        await Accessibility.AssertNoViolationsAsync(page);
        await fixture.ScreenshotAsync(page, "usage");

        await page.GetByLabel("Show").SelectOptionAsync("requests");
        await Expect(page.GetByRole(AriaRole.Img, new() { Name = "Requests per day" })).ToBeVisibleAsync();
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task AdministratorSeesEveryUserAndCanDisableAndEnableOne()
    {
        var userEmail = NewEmail("managed");
        await fixture.RegisterViaApiAsync(userEmail);

        var page = await fixture.NewPageAsync();
        await SignInAsync(page, fixture.AdminEmail);
        await page.GetByRole(AriaRole.Link, new() { Name = "Admin" }).ClickAsync();
        var row = page.GetByRole(AriaRole.Row).Filter(new() { HasText = userEmail });
        await Expect(row).ToContainTextAsync("Active");
        await Expect(page.GetByRole(AriaRole.Row).Filter(new() { HasText = fixture.AdminEmail })).ToContainTextAsync("Administrator");

        await row.GetByRole(AriaRole.Button, new() { Name = $"Disable {userEmail}" }).ClickAsync();
        await Expect(row).ToContainTextAsync("Disabled");

        // The disabled user cannot sign in, and is told so in words.
        var other = await fixture.NewPageAsync();
        await other.GotoAsync("/");
        await other.GetByLabel("Email").FillAsync(userEmail);
        await other.GetByLabel("Password").FillAsync(Password);
        await other.GetByRole(AriaRole.Button, new() { Name = "Sign in", Exact = true }).ClickAsync();
        await Expect(other.GetByRole(AriaRole.Alert)).ToContainTextAsync("disabled");

        await page.ReloadAsync();
        await Expect(row).ToContainTextAsync("Disabled");
        await Accessibility.AssertNoViolationsAsync(page);
        await fixture.ScreenshotAsync(page, "admin");
        await row.GetByRole(AriaRole.Button, new() { Name = $"Enable {userEmail}" }).ClickAsync();
        await Expect(row).ToContainTextAsync("Active");
        await SignInAsync(other, userEmail);
        await page.Context.CloseAsync();
        await other.Context.CloseAsync();
    }
}
