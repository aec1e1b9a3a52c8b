using System.Text;
using Microsoft.Playwright;
using static Jackcwf.BrowserTests.ChatUi;
using static Microsoft.Playwright.Assertions;

namespace Jackcwf.BrowserTests;

public sealed class DocumentsTests(BrowserFixture fixture)
{
    [Fact]
    public async Task AnUploadedDocumentGroundsTheAnswerWithANumberedCitationThatOpensItsPassage()
    {
        var page = await fixture.NewPageAsync();
        await RegisterAsync(page, NewEmail("documents"));

        await page.GetByRole(AriaRole.Button, new() { Name = "Attach", Exact = true }).ClickAsync();
        var guide = "# Greenhouse guide\n\nThe greenhouse door code is LANTERN-58; it opens the east door only.\n\n"
            + "Orchids want bright shade, warm days and cooler nights, with water once a week.\n";
        await page.GetByTestId("file-input").SetInputFilesAsync(new FilePayload
        {
            Name = "greenhouse.md", MimeType = "text/markdown", Buffer = Encoding.UTF8.GetBytes(guide),
        });
        // Processed in the background: the chip says so until the file is ready (the model loads on first use).
        var chip = page.GetByTestId("attached-file").Filter(new() { HasText = "greenhouse.md" });
        await Expect(chip).ToHaveAttributeAsync("data-status", "ready", new() { Timeout = 120_000 });
        await page.GetByRole(AriaRole.Button, new() { Name = "Attach", Exact = true }).ClickAsync();

        await SendAsync(page, "What is the greenhouse door code?");
        var answer = AssistantMessages(page).Last;
        await WaitForStatusAsync(answer, "complete");
        var citation = answer.GetByTestId("citation").First;
        await Expect(citation).ToContainTextAsync("[1]");
        await Expect(citation).ToContainTextAsync("greenhouse.md");
        await citation.ClickAsync();
        await Expect(answer.GetByTestId("citation-snippet")).ToContainTextAsync("LANTERN-58");
        await Accessibility.AssertNoViolationsAsync(page);
        await fixture.ScreenshotAsync(page, "cited-answer");

        // The citation is stored with the answer: it is there after a reload too.
        await page.ReloadAsync();
        await Expect(AssistantMessages(page).Last.GetByTestId("citation").First).ToContainTextAsync("greenhouse.md");

        await page.GetByRole(AriaRole.Link, new() { Name = "Files", Exact = true }).ClickAsync();
        var row = page.GetByTestId("file-row").Filter(new() { HasText = "greenhouse.md" });
        await Expect(row).ToHaveAttributeAsync("data-status", "ready");
        await Accessibility.AssertNoViolationsAsync(page);
        await page.Context.CloseAsync();
    }
}
