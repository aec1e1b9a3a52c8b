using static Jackcwf.BrowserTests.ChatUi;
using static Microsoft.Playwright.Assertions;

namespace Jackcwf.BrowserTests;

/// <summary>
/// Restarts the shared service (same port, same database): the other tests do not mind, because
/// tests run one at a time and everything they need is stored.
/// </summary>
public sealed class ServerRestartTests(BrowserFixture fixture)
{
    [Fact]
    public async Task AnAnswerCutByAServerRestartIsMarkedInterruptedAndCanBeContinued()
    {
        var api = fixture.Api;
        var page = await fixture.NewPageAsync();
        await RegisterAsync(page, NewEmail("restart"));

        await SendAsync(page, NumberedWords(300, "i"));
        var answer = AssistantMessages(page).Last;
        await Expect(Content(answer)).ToContainTextAsync("i005");

        await api.StopAsync(TimeSpan.FromSeconds(60));
        await api.RestartAsync(cancellationToken: TestContext.Current.CancellationToken);

        await WaitForStatusAsync(answer, "interrupted", 60_000);
        await Expect(answer).ToContainTextAsync("Interrupted");
        await Expect(Content(answer)).ToContainTextAsync("i001 i002 i003 i004 i005");
        await Expect(page.GetByRole(Microsoft.Playwright.AriaRole.Alert).Filter(new() { HasText = "interrupted" })).ToContainTextAsync("Continue it or regenerate it");

        // Continue asks the model to go on; the demo model answers it like any message.
        await answer.GetByRole(Microsoft.Playwright.AriaRole.Button, new() { Name = "Continue" }).ClickAsync();
        await WaitForStatusAsync(AssistantMessages(page).Last, "complete");
        await Expect(Messages(page)).ToHaveCountAsync(4);
        await Expect(Content(UserMessages(page).Last)).ToHaveTextAsync("Please continue from where you stopped.");
        await page.Context.CloseAsync();
    }
}
