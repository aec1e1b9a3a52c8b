using Microsoft.Playwright;
using static Jackcwf.BrowserTests.ChatUi;
using static Microsoft.Playwright.Assertions;

namespace Jackcwf.BrowserTests;

public sealed class ChatFlowTests(BrowserFixture fixture)
{
    [Fact]
    public async Task RegisteredUserSeesTheAnswerGrowAndFindsBothMessagesAfterReload()
    {
        var page = await fixture.NewPageAsync();
        await RegisterAsync(page, NewEmail("alice"));

        var question = "Tell me about streaming " + NumberedWords(30);
        await SendAsync(page, question);

        var answer = AssistantMessages(page).Last;
        await Expect(UserMessages(page).Last).ToContainTextAsync("Tell me about streaming");
        await Expect(answer).ToHaveAttributeAsync("data-status", "streaming");

        // Sample the answer while it streams: it must be seen at several lengths before it completes.
        var seenLengths = new HashSet<int>();
        for (var i = 0; i < 200 && await answer.GetAttributeAsync("data-status") == "streaming"; i++)
        {
            var partial = await TextOfAsync(answer);
            if (partial.Length > 0 && partial.Length < question.Length)
            {
                Assert.StartsWith(partial, question, StringComparison.Ordinal);
                seenLengths.Add(partial.Length);
            }

            await Task.Delay(40, TestContext.Current.CancellationToken);
        }

        await WaitForStatusAsync(answer, "complete");
        Assert.Equal(question, await TextOfAsync(answer));
        Assert.True(seenLengths.Count >= 3, $"the answer should appear progressively; partial lengths seen: {string.Join(", ", seenLengths)}");
        await Expect(Conversations(page)).ToHaveCountAsync(1);
        await Expect(Conversations(page).First).ToContainTextAsync("Tell me about streaming");
        await Expect(Composer(page)).ToBeFocusedAsync();
        await fixture.ScreenshotAsync(page, "chat");

        await page.ReloadAsync();
        await Expect(Messages(page)).ToHaveCountAsync(2);
        Assert.Equal(question, await TextOfAsync(UserMessages(page).First));
        Assert.Equal(question, await TextOfAsync(AssistantMessages(page).First));
        await Expect(AssistantMessages(page).First).ToHaveAttributeAsync("data-status", "complete");
        await Expect(Conversations(page)).ToHaveCountAsync(1);

        // Starting a new chat and coming back through the sidebar also finds the conversation.
        await page.GetByRole(AriaRole.Link, new() { Name = "+ New chat" }).ClickAsync();
        await Expect(Messages(page)).ToHaveCountAsync(0);
        await Conversations(page).First.GetByRole(AriaRole.Link).ClickAsync();
        await Expect(Messages(page)).ToHaveCountAsync(2);
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task StoppingALongAnswerKeepsThePartialTextMarkedStopped()
    {
        var page = await fixture.NewPageAsync();
        await RegisterAsync(page, NewEmail("stopper"));

        var question = NumberedWords(200);
        await SendAsync(page, question);
        var answer = AssistantMessages(page).Last;
        await Expect(StopButton(page)).ToBeVisibleAsync();
        await Expect(Content(answer)).ToContainTextAsync("w010");

        await StopButton(page).ClickAsync();

        await WaitForStatusAsync(answer, "stopped");
        await Expect(answer).ToContainTextAsync("Stopped");
        await Expect(SendButton(page)).ToBeVisibleAsync();
        var partial = await TextOfAsync(answer);
        Assert.StartsWith("w001 w002", partial, StringComparison.Ordinal);
        Assert.StartsWith(partial, question, StringComparison.Ordinal);
        Assert.True(partial.Length < question.Length, "the answer should have been cut short");

        // The server kept what was shown, still marked stopped.
        await page.ReloadAsync();
        var reloaded = AssistantMessages(page).Last;
        await WaitForStatusAsync(reloaded, "stopped");
        var stored = await TextOfAsync(reloaded);
        Assert.StartsWith(stored, question, StringComparison.Ordinal);
        Assert.True(stored.Length >= partial.Length - 10 && stored.Length < question.Length,
            $"stored text ({stored.Length} chars) should be the stopped partial answer ({partial.Length} chars)");
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task EscapeStopsTheAnswerAndShiftEnterAddsANewLine()
    {
        var page = await fixture.NewPageAsync();
        await RegisterAsync(page, NewEmail("keys"));

        await Composer(page).FillAsync("first line");
        await Composer(page).PressAsync("Shift+Enter");
        await Composer(page).PressSequentiallyAsync("second line");
        await Expect(Composer(page)).ToHaveValueAsync("first line\nsecond line");
        await Expect(Messages(page)).ToHaveCountAsync(0);

        await Composer(page).FillAsync(NumberedWords(150, "k"));
        await Composer(page).PressAsync("Enter");
        var answer = AssistantMessages(page).Last;
        await Expect(Content(answer)).ToContainTextAsync("k005");
        await page.Keyboard.PressAsync("Escape");
        await WaitForStatusAsync(answer, "stopped");
        await page.Context.CloseAsync();
    }
}
