using System.Net.Http.Json;
using Microsoft.Playwright;
using static Jackcwf.BrowserTests.ChatUi;
using static Microsoft.Playwright.Assertions;

namespace Jackcwf.BrowserTests;

public sealed class SharingAndAuditPagesTests(BrowserFixture fixture)
{
    [Fact]
    public async Task ASharedConversationOpensSignedOutWithoutTheOwnerAndStopsWhenRevoked()
    {
        var email = NewEmail("share");
        var page = await fixture.NewPageAsync();
        await RegisterAsync(page, email);
        await SendAsync(page, "the **sunny** paragraph to share");
        await WaitForStatusAsync(AssistantMessages(page).Last, "complete");

        await page.GetByRole(AriaRole.Button, new() { Name = "Share", Exact = true }).ClickAsync();
        var url = await page.GetByLabel("Anyone with this link").InputValueAsync();
        Assert.Contains("/s/", url);
        await Accessibility.AssertNoViolationsAsync(page);

        var reader = await fixture.NewPageAsync();
        await reader.GotoAsync(url);
        await Expect(reader.GetByText("Shared conversation (read-only)")).ToBeVisibleAsync();
        var answer = reader.Locator("[data-testid=message][data-role=assistant]");
        // The same sanitised Markdown rendering as in the chat.
        await Expect(answer.Locator("strong")).ToHaveTextAsync("sunny");
        await Expect(Composer(reader)).ToHaveCountAsync(0);
        Assert.DoesNotContain(email, await reader.ContentAsync(), StringComparison.OrdinalIgnoreCase);
        await Accessibility.AssertNoViolationsAsync(reader);
        await fixture.ScreenshotAsync(reader, "shared-conversation");

        await page.GetByRole(AriaRole.Button, new() { Name = "Stop sharing" }).ClickAsync();
        await Expect(page.GetByText("Sharing stopped")).ToBeVisibleAsync();
        await reader.ReloadAsync();
        await Expect(reader.GetByRole(AriaRole.Alert)).ToContainTextAsync("does not exist or was revoked");
        await page.Context.CloseAsync();
        await reader.Context.CloseAsync();
    }

    [Fact]
    public async Task TheAuditPageListsActionsForAdministratorsAndFiltersThem()
    {
        using var admin = await fixture.ApiClientAsync(fixture.AdminEmail);
        var ct = TestContext.Current.CancellationToken;
        (await admin.PostAsJsonAsync("/api/keys", new { name = "audited key" }, ct)).EnsureSuccessStatusCode();
        using var anon = fixture.Api.CreateClient();
        await anon.PostAsJsonAsync("/api/auth/login", new { email = fixture.AdminEmail, password = "Wrong-password-1" }, ct);

        var page = await fixture.NewPageAsync();
        await SignInAsync(page, fixture.AdminEmail);
        await page.GetByRole(AriaRole.Link, new() { Name = "Audit log" }).ClickAsync();
        var table = page.GetByTestId("audit-table");
        await Expect(table.Locator("tr[data-action='api_key.created']").Filter(new() { HasText = fixture.AdminEmail }).First).ToBeVisibleAsync();
        await Accessibility.AssertNoViolationsAsync(page);
        await fixture.ScreenshotAsync(page, "audit-log");

        await page.GetByLabel("Outcome").SelectOptionAsync("failure");
        await Expect(table.Locator("tbody tr").First).ToHaveAttributeAsync("data-action", "auth.sign_in");
        await Expect(table.Locator("tr[data-action='api_key.created']")).ToHaveCountAsync(0);
        Assert.DoesNotContain("Wrong-password-1", await page.ContentAsync(), StringComparison.Ordinal);

        // An ordinary user has no link and no page.
        var user = await fixture.NewPageAsync();
        await RegisterAsync(user, NewEmail("notadmin"));
        await Expect(user.GetByRole(AriaRole.Link, new() { Name = "Audit log" })).ToHaveCountAsync(0);
        await user.GotoAsync("/#/audit");
        await Expect(user.GetByRole(AriaRole.Heading, new() { Name = "Audit log" })).ToHaveCountAsync(0);
        await page.Context.CloseAsync();
        await user.Context.CloseAsync();
    }

    [Fact]
    public async Task APersonDownloadsTheirDataThenDeletesTheirAccountWithTheirPassword()
    {
        var email = NewEmail("leaving");
        var page = await fixture.NewPageAsync();
        await RegisterAsync(page, email);
        await SendAsync(page, "remember the blue kettle");
        await WaitForStatusAsync(AssistantMessages(page).Last, "complete");

        await page.GetByRole(AriaRole.Link, new() { Name = "Account" }).ClickAsync();
        var download = await page.RunAndWaitForDownloadAsync(() => page.GetByRole(AriaRole.Link, new() { Name = "Download my data" }).ClickAsync());
        using (var zip = System.IO.Compression.ZipFile.OpenRead(await download.PathAsync()))
        {
            var markdown = zip.Entries.Single(e => e.FullName.EndsWith(".md", StringComparison.Ordinal));
            using var reader = new StreamReader(markdown.Open());
            Assert.Contains("remember the blue kettle", await reader.ReadToEndAsync(TestContext.Current.CancellationToken));
        }
        await Accessibility.AssertNoViolationsAsync(page);

        await page.GetByRole(AriaRole.Button, new() { Name = "Delete my account…" }).ClickAsync();
        await page.GetByLabel("Enter your password to confirm").FillAsync("Not-my-password1");
        await page.GetByRole(AriaRole.Button, new() { Name = "Delete my account now" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("does not match this account");
        await page.GetByLabel("Enter your password to confirm").FillAsync(Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Delete my account now" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Sign in", Exact = true })).ToBeVisibleAsync();

        using var http = fixture.Api.CreateClient();
        var login = await http.PostAsJsonAsync("/api/auth/login", new { email, password = Password }, TestContext.Current.CancellationToken);
        Assert.Equal(System.Net.HttpStatusCode.Unauthorized, login.StatusCode);
        await page.Context.CloseAsync();
    }
}
