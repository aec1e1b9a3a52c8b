using System.Collections.Concurrent;
using Microsoft.Playwright;
using static Jackcwf.BrowserTests.ChatUi;
using static Microsoft.Playwright.Assertions;

namespace Jackcwf.BrowserTests;

public sealed class ResilienceTests(BrowserFixture fixture)
{
    [Fact]
    public async Task DroppedConnectionMidAnswerResumesWithoutDuplicatedOrMissingWords()
    {
        await using var proxy = new CuttableProxy(fixture.BaseUrl);
        var page = await fixture.NewPageAsync(baseUrl: proxy.BaseUrl);
        await RegisterAsync(page, NewEmail("offline"));
        var resumes = new ConcurrentBag<string>();
        page.Request += (_, request) =>
        {
            if (request.Url.EndsWith("/events", StringComparison.Ordinal))
            {
                resumes.Add(request.Headers.TryGetValue("last-event-id", out var id) ? id : "");
            }
        };

        var question = NumberedWords(120, "r");
        await SendAsync(page, question);
        var answer = AssistantMessages(page).Last;
        await Expect(Content(answer)).ToContainTextAsync("r008");

        // The connection breaks mid-answer and stays down for a while; the server keeps generating meanwhile.
        proxy.CutAll();
        await Expect(page.GetByText("Reconnecting…").First).ToBeVisibleAsync();
        var beforeDrop = await TextOfAsync(answer);
        await Task.Delay(1500, TestContext.Current.CancellationToken);
        proxy.Restore();

        // Every state seen from now on must be a prefix of the true answer: a repeated or a
        // skipped word would break that.
        var samples = new List<string>();
        for (var i = 0; i < 400 && await answer.GetAttributeAsync("data-status") == "streaming"; i++)
        {
            samples.Add(await TextOfAsync(answer));
            await Task.Delay(30, TestContext.Current.CancellationToken);
        }

        await WaitForStatusAsync(answer, "complete", 60_000);
        foreach (var sample in samples)
        {
            Assert.StartsWith(sample, question, StringComparison.Ordinal);
        }

        Assert.Equal(question, await TextOfAsync(answer));
        Assert.StartsWith(beforeDrop, question, StringComparison.Ordinal);
        Assert.Contains(resumes, id => id.Length > 0);
        await Expect(page.GetByText("Reconnecting…")).ToHaveCountAsync(0);

        await page.ReloadAsync();
        await Expect(Content(AssistantMessages(page).Last)).ToHaveTextAsync(question);
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task ReloadingDuringAnAnswerPicksTheStreamUpAgain()
    {
        var page = await fixture.NewPageAsync();
        await RegisterAsync(page, NewEmail("reload"));
        var question = NumberedWords(100, "p");
        await SendAsync(page, question);
        await Expect(Content(AssistantMessages(page).Last)).ToContainTextAsync("p005");

        await page.ReloadAsync();

        var answer = AssistantMessages(page).Last;
        await WaitForStatusAsync(answer, "complete", 60_000);
        Assert.Equal(question, await TextOfAsync(answer));
        await Expect(Messages(page)).ToHaveCountAsync(2);
        await page.Context.CloseAsync();
    }
}
