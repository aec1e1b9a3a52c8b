using System.Net.Http.Json;
using Microsoft.Playwright;
using static Jackcwf.BrowserTests.ChatUi;
using static Microsoft.Playwright.Assertions;

namespace Jackcwf.BrowserTests;

public sealed class SidebarTests(BrowserFixture fixture)
{
    [Fact]
    public async Task SidebarPagesAsYouScrollSearchesRenamesAndDeletesWithUndo()
    {
        var page = await fixture.NewPageAsync();
        var email = NewEmail("sidebar");
        await RegisterAsync(page, email);

        // 35 conversations made through the API: more than one page of the list.
        using var http = await fixture.ApiClientAsync(email);
        var ct = TestContext.Current.CancellationToken;
        for (var i = 1; i <= 35; i++)
        {
            (await http.PostAsJsonAsync("/api/conversations", new { title = $"Topic {i:D2}" }, ct)).EnsureSuccessStatusCode();
        }

        await page.ReloadAsync();
        await Expect(Conversations(page)).ToHaveCountAsync(30);
        await Expect(Conversations(page).First).ToContainTextAsync("Topic 35");
        await Conversations(page).Last.ScrollIntoViewIfNeededAsync();
        await Expect(Conversations(page)).ToHaveCountAsync(35);
        await Expect(Conversations(page).Last).ToContainTextAsync("Topic 01");

        var search = page.GetByLabel("Search conversations");
        await search.FillAsync("Topic 07");
        await Expect(Conversations(page)).ToHaveCountAsync(1);
        await search.FillAsync("");
        await Expect(Conversations(page)).ToHaveCountAsync(30);

        // Rename: the new title is kept by the server.
        var first = Conversations(page).First;
        await first.GetByRole(AriaRole.Button, new() { Name = "Rename “Topic 35”" }).ClickAsync();
        await page.GetByLabel("Conversation title").FillAsync("Holiday plans");
        await page.GetByLabel("Conversation title").PressAsync("Enter");
        await Expect(Conversations(page).First).ToContainTextAsync("Holiday plans");

        // Delete, then undo: nothing is lost.
        await Conversations(page).First.GetByRole(AriaRole.Button, new() { Name = "Delete “Holiday plans”" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status).Filter(new() { HasText = "Deleted “Holiday plans”." })).ToBeVisibleAsync();
        await Expect(page.GetByTestId("conversation").Filter(new() { HasText = "Holiday plans" })).ToHaveCountAsync(0);
        await page.GetByRole(AriaRole.Button, new() { Name = "Undo" }).ClickAsync();
        await Expect(Conversations(page).First).ToContainTextAsync("Holiday plans");

        // Delete for real: once the undo window has passed, it is gone on the server too.
        await Conversations(page).First.GetByRole(AriaRole.Button, new() { Name = "Delete “Holiday plans”" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Undo" })).ToHaveCountAsync(0, new() { Timeout = 15_000 });
        await page.ReloadAsync();
        await Expect(Conversations(page).First).ToContainTextAsync("Topic 34");
        await Expect(page.GetByTestId("conversation").Filter(new() { HasText = "Holiday plans" })).ToHaveCountAsync(0);
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task SystemPromptModelAndExportBelongToTheConversation()
    {
        var page = await fixture.NewPageAsync();
        await RegisterAsync(page, NewEmail("prompt"));
        await SendAsync(page, "hello");
        await WaitForStatusAsync(AssistantMessages(page).Last, "complete");

        var model = page.GetByLabel("Model");
        await Expect(model).ToHaveValueAsync("demo/echo");
        await Expect(model.Locator("option[value='demo/echo']")).ToContainTextAsync("free");

        await page.GetByRole(AriaRole.Button, new() { Name = "System prompt" }).ClickAsync();
        await page.GetByLabel("System prompt", new() { Exact = true }).Last.FillAsync("Answer like a pirate.");
        await page.GetByRole(AriaRole.Button, new() { Name = "Save", Exact = true }).ClickAsync();
        await Expect(page.GetByText("Saved.")).ToBeVisibleAsync();

        await page.ReloadAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "System prompt" }).ClickAsync();
        await Expect(page.Locator("#chat-settings textarea")).ToHaveValueAsync("Answer like a pirate.");

        // Export downloads the conversation as Markdown, system prompt included.
        await page.GetByText("Export", new() { Exact = true }).ClickAsync();
        var download = await page.RunAndWaitForDownloadAsync(() => page.GetByRole(AriaRole.Link, new() { Name = "Markdown (.md)" }).ClickAsync());
        Assert.EndsWith(".md", download.SuggestedFilename, StringComparison.Ordinal);
        var markdown = await File.ReadAllTextAsync(await download.PathAsync(), TestContext.Current.CancellationToken);
        Assert.Contains("hello", markdown, StringComparison.Ordinal);
        Assert.Contains("Answer like a pirate.", markdown, StringComparison.Ordinal);
        await page.Context.CloseAsync();
    }
}
