using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Playwright;
using static Jackcwf.BrowserTests.ChatUi;
using static Microsoft.Playwright.Assertions;

namespace Jackcwf.BrowserTests;

/// <summary>Pinning, archiving and folders in the sidebar, saved prompts through "/", and feedback on answers.</summary>
public sealed class ComfortsTests(BrowserFixture fixture)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static ILocator Button(IPage page, string name) => page.GetByRole(AriaRole.Button, new() { Name = name, Exact = true });

    /// <summary>Opens a conversation's "More actions" menu in the sidebar and chooses <paramref name="action"/>.</summary>
    private static async Task ActOnAsync(IPage page, string title, string action)
    {
        await page.GetByLabel($"More actions for “{title}”").ClickAsync();
        await page.GetByRole(AriaRole.Group, new() { Name = $"Actions for “{title}”" }).GetByRole(AriaRole.Button, new() { Name = action, Exact = true }).ClickAsync();
    }

    [Fact]
    public async Task PinArchiveAndFoldersOrganiseTheSidebar()
    {
        var email = NewEmail("organise");
        var page = await fixture.NewPageAsync();
        await RegisterAsync(page, email);
        using (var http = await fixture.ApiClientAsync(email))
        {
            foreach (var title in new[] { "Alpha", "Beta", "Gamma" })
            {
                (await http.PostAsJsonAsync("/api/conversations", new { title }, Ct)).EnsureSuccessStatusCode();
            }
        }
        await page.ReloadAsync();
        // The links: a row also holds its (closed) folder menu, whose text is not the title.
        var list = page.GetByRole(AriaRole.List, new() { Name = "Conversations", Exact = true }).GetByRole(AriaRole.Link);
        await Expect(list).ToHaveTextAsync(["Gamma", "Beta", "Alpha"]);

        await ActOnAsync(page, "Alpha", "Pin");
        await Expect(list).ToHaveTextAsync(["Pinned: Alpha", "Gamma", "Beta"]);

        await ActOnAsync(page, "Beta", "Archive");
        await Expect(list).ToHaveTextAsync(["Pinned: Alpha", "Gamma"]);
        await Button(page, "Archived").ClickAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Archived" })).ToBeVisibleAsync();
        var archived = page.GetByRole(AriaRole.List, new() { Name = "Archived conversations" }).GetByRole(AriaRole.Link);
        await Expect(archived).ToHaveTextAsync(["Beta"]);
        // An archived conversation opens as usual and says so; it can be brought back from there.
        await archived.First.ClickAsync();
        var banner = page.GetByRole(AriaRole.Status).Filter(new() { HasText = "This conversation is archived" });
        await Expect(banner).ToBeVisibleAsync();
        await banner.GetByRole(AriaRole.Button, new() { Name = "Unarchive" }).ClickAsync();
        await Expect(banner).ToHaveCountAsync(0);
        await Expect(archived).ToHaveCountAsync(0);
        await Expect(page.GetByText("No archived conversations.")).ToBeVisibleAsync();
        await Button(page, "← All conversations").ClickAsync();
        await Expect(list).ToHaveTextAsync(["Pinned: Alpha", "Gamma", "Beta"]);

        await Button(page, "New folder").ClickAsync();
        await page.GetByLabel("Folder name").FillAsync("Work");
        await page.GetByLabel("Folder name").PressAsync("Enter");
        var folder = page.GetByRole(AriaRole.Region, new() { Name = "Folder Work" });
        await Expect(folder).ToBeVisibleAsync();
        await ActOnAsync(page, "Gamma", "Move to Work");
        await Expect(folder.GetByRole(AriaRole.Link)).ToHaveTextAsync(["Gamma"]);
        await Expect(list).ToHaveTextAsync(["Pinned: Alpha", "Beta"]);
        await Accessibility.AssertNoViolationsAsync(page);
        await fixture.ScreenshotAsync(page, "sidebar-folders");

        // Collapsing hides the folder's conversations; deleting the folder keeps them.
        var toggle = folder.GetByRole(AriaRole.Button, new() { Name = "Work (1)", Exact = true });
        await Expect(toggle).ToHaveAttributeAsync("aria-expanded", "true");
        await toggle.ClickAsync();
        await Expect(toggle).ToHaveAttributeAsync("aria-expanded", "false");
        await Expect(folder.GetByRole(AriaRole.Link)).ToHaveCountAsync(0);
        page.Dialog += (_, dialog) => _ = dialog.AcceptAsync();
        await Button(page, "Delete folder “Work”").ClickAsync();
        await Expect(folder).ToHaveCountAsync(0);
        await Expect(list).ToHaveTextAsync(["Pinned: Alpha", "Gamma", "Beta"]);

        // All of it is stored: a fresh page shows the same order.
        await page.ReloadAsync();
        await Expect(list).ToHaveTextAsync(["Pinned: Alpha", "Gamma", "Beta"]);
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task ASavedPromptIsPickedWithSlashAndItsTextGoesIntoTheMessage()
    {
        var page = await fixture.NewPageAsync();
        await RegisterAsync(page, NewEmail("prompts"));
        await page.GetByRole(AriaRole.Link, new() { Name = "Saved prompts" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Saved prompts" })).ToBeVisibleAsync();
        foreach (var (title, command, text) in new[] { ("Summarise", "sum", "Summarise the tea notes in three bullets"), ("Translate", "fr", "Translate into French:") })
        {
            await page.GetByLabel("Title", new() { Exact = true }).FillAsync(title);
            await page.GetByLabel("Command (optional)").FillAsync(command);
            await page.GetByLabel("Text", new() { Exact = true }).FillAsync(text);
            await Button(page, "Add prompt").ClickAsync();
            await Expect(page.GetByTestId("saved-prompt").Filter(new() { HasText = title })).ToBeVisibleAsync();
        }
        // A taken command is refused with the server's words, and nothing is added.
        await page.GetByLabel("Title", new() { Exact = true }).FillAsync("Again");
        await page.GetByLabel("Command (optional)").FillAsync("sum");
        await page.GetByLabel("Text", new() { Exact = true }).FillAsync("x");
        await Button(page, "Add prompt").ClickAsync();
        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("/sum is already used");
        await Expect(page.GetByTestId("saved-prompt")).ToHaveCountAsync(2);
        await Accessibility.AssertNoViolationsAsync(page);

        await page.GetByRole(AriaRole.Link, new() { Name = "+ New chat" }).ClickAsync();
        var composer = Composer(page);
        await composer.PressSequentiallyAsync("/");
        var picker = page.GetByRole(AriaRole.Listbox, new() { Name = "Saved prompts" });
        await Expect(picker.GetByRole(AriaRole.Option)).ToHaveCountAsync(2);
        await Accessibility.AssertNoViolationsAsync(page);
        await composer.PressSequentiallyAsync("su");
        await Expect(picker.GetByRole(AriaRole.Option)).ToHaveCountAsync(1);
        await Expect(picker.GetByRole(AriaRole.Option).First).ToContainTextAsync("Summarise");
        await composer.PressAsync("Enter");
        await Expect(composer).ToHaveValueAsync("Summarise the tea notes in three bullets");
        await Expect(picker).ToHaveCountAsync(0);

        // Esc closes the picker and leaves what was typed.
        await composer.FillAsync("");
        await composer.PressSequentiallyAsync("/");
        await Expect(picker).ToBeVisibleAsync();
        await composer.PressAsync("Escape");
        await Expect(picker).ToHaveCountAsync(0);
        await Expect(composer).ToHaveValueAsync("/");

        // The arrow keys choose among the matches; the chosen text is sent like typed text.
        await composer.FillAsync("");
        await composer.PressSequentiallyAsync("/");
        await composer.PressAsync("ArrowDown");
        await Expect(picker.GetByRole(AriaRole.Option, new() { Selected = true })).ToContainTextAsync("Translate");
        await composer.PressAsync("ArrowUp");
        await composer.PressAsync("Enter");
        await composer.PressAsync("Enter");
        var answer = AssistantMessages(page).Last;
        await WaitForStatusAsync(answer, "complete");
        Assert.Contains("Summarise the tea notes in three bullets", await TextOfAsync(answer));
        await page.Context.CloseAsync();
    }

    private async Task<int> ThumbsDownAsync(HttpClient admin, string model)
    {
        var report = await admin.GetFromJsonAsync<JsonElement>("/api/admin/usage", Ct);
        return report.GetProperty("byModel").EnumerateArray().Where(m => m.GetProperty("model").GetString() == model)
            .Select(m => m.GetProperty("thumbsDown").GetInt32()).FirstOrDefault();
    }

    [Fact]
    public async Task AnAnswerIsRatedWithACommentAndTheAdministratorSeesItPerModel()
    {
        using var admin = await fixture.ApiClientAsync(fixture.AdminEmail);
        var page = await fixture.NewPageAsync();
        await RegisterAsync(page, NewEmail("feedback"));
        await SendAsync(page, "rate this answer please");
        var answer = AssistantMessages(page).Last;
        await WaitForStatusAsync(answer, "complete");
        // The only model of the browser tests' service.
        const string model = "demo/echo";
        var before = await ThumbsDownAsync(admin, model);

        var good = answer.GetByRole(AriaRole.Button, new() { Name = "Good answer" });
        var bad = answer.GetByRole(AriaRole.Button, new() { Name = "Bad answer" });
        await good.ClickAsync();
        await Expect(good).ToHaveAttributeAsync("aria-pressed", "true");
        await bad.ClickAsync();
        await Expect(bad).ToHaveAttributeAsync("aria-pressed", "true");
        await Expect(good).ToHaveAttributeAsync("aria-pressed", "false");
        await answer.GetByRole(AriaRole.Button, new() { Name = "Add a comment" }).ClickAsync();
        await answer.GetByLabel("Comment on this answer (optional)").FillAsync("It only repeated my words.");
        await answer.GetByRole(AriaRole.Button, new() { Name = "Save comment" }).ClickAsync();
        await Expect(answer.GetByTestId("feedback-comment")).ToHaveTextAsync("Your comment: It only repeated my words.");
        await Accessibility.AssertNoViolationsAsync(page);

        // Stored: a fresh page shows the rating and the comment.
        await page.ReloadAsync();
        answer = AssistantMessages(page).Last;
        await Expect(answer.GetByRole(AriaRole.Button, new() { Name = "Bad answer" })).ToHaveAttributeAsync("aria-pressed", "true");
        await Expect(answer.GetByTestId("feedback-comment")).ToContainTextAsync("It only repeated my words.");
        Assert.Equal(before + 1, await ThumbsDownAsync(admin, model));

        var adminPage = await fixture.NewPageAsync();
        await SignInAsync(adminPage, fixture.AdminEmail);
        await adminPage.GetByRole(AriaRole.Link, new() { Name = "Admin" }).ClickAsync();
        var row = adminPage.GetByTestId("model-usage").Locator($"tr[data-model='{model}']");
        await Expect(row.GetByTestId("thumbs-down")).ToHaveTextAsync((before + 1).ToString(System.Globalization.CultureInfo.InvariantCulture));
        await Accessibility.AssertNoViolationsAsync(adminPage);
        await fixture.ScreenshotAsync(adminPage, "admin-feedback-by-model");

        // Taking the rating back counts it no more.
        await answer.GetByRole(AriaRole.Button, new() { Name = "Bad answer" }).ClickAsync();
        await Expect(answer.GetByRole(AriaRole.Button, new() { Name = "Bad answer" })).ToHaveAttributeAsync("aria-pressed", "false");
        Assert.Equal(before, await ThumbsDownAsync(admin, model));
        await page.Context.CloseAsync();
        await adminPage.Context.CloseAsync();
    }
}
