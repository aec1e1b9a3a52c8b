using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.Playwright;
using static Jackcwf.BrowserTests.ChatUi;
using static Microsoft.Playwright.Assertions;

namespace Jackcwf.BrowserTests;

public sealed class SecurityTests(BrowserFixture fixture)
{
    [Fact]
    public async Task ScriptPayloadsEchoedByTheModelNeverExecuteOrReachTheirUrls()
    {
        // Anything that connects here was sent by a payload.
        using var trap = new TcpListener(IPAddress.Loopback, 0);
        trap.Start();
        var trapUrl = $"http://127.0.0.1:{((IPEndPoint)trap.LocalEndpoint).Port}";
        var trapHits = 0;
        var cancel = TestContext.Current.CancellationToken;
        _ = Task.Run(async () =>
        {
            while (!cancel.IsCancellationRequested)
            {
                using var client = await trap.AcceptTcpClientAsync(cancel);
                Interlocked.Increment(ref trapHits);
            }
        }, cancel);

        var page = await fixture.NewPageAsync();
        var dialogs = new ConcurrentBag<string>();
        var payloadRequests = new ConcurrentBag<string>();
        page.Dialog += async (_, dialog) =>
        {
            dialogs.Add(dialog.Message);
            await dialog.DismissAsync();
        };
        page.Context.Request += (_, request) =>
        {
            if (request.Url.StartsWith(trapUrl, StringComparison.Ordinal) || request.Url.StartsWith("javascript:", StringComparison.OrdinalIgnoreCase) || request.Url.StartsWith("data:text", StringComparison.OrdinalIgnoreCase))
            {
                payloadRequests.Add(request.Url);
            }
        };
        await RegisterAsync(page, NewEmail("xss"));

        string[] payloads =
        [
            "<img src=x onerror=\"window.__xss='img';alert('img')\">",
            "<script>window.__xss='script';alert('script')</script>",
            "<svg><script>window.__xss='svg';alert('svg')</script></svg>",
            "<svg onload=\"window.__xss='svgload';alert('svgload')\"></svg>",
            "[click me](javascript:window.__xss='md';alert('md'))",
            "<a href=\"jAvAsCrIpT:window.__xss='mixed';alert('mixed')\">mixed case</a>",
            "[entity](&#106;avascript:alert('entity'))",
            "[x]: javascript:alert('ref')\n\n[reference link][x]",
            "[data link](data:text/html;base64,PHNjcmlwdD5hbGVydCgnZGF0YScpPC9zY3JpcHQ+)",
            $"![tracking pixel]({trapUrl}/pixel.png)",
            $"<img src=\"{trapUrl}/img.png\"><iframe src=\"{trapUrl}/frame\"></iframe>",
            "<details open ontoggle=\"window.__xss='toggle';alert('toggle')\">x</details>",
        ];

        foreach (var payload in payloads)
        {
            await SendAsync(page, payload);
            await WaitForStatusAsync(AssistantMessages(page).Last, "complete");
        }

        await Expect(AssistantMessages(page)).ToHaveCountAsync(payloads.Length);
        // The payloads are shown as text, not interpreted.
        await Expect(AssistantMessages(page).Nth(1)).ToContainTextAsync("<script>window.__xss='script'");

        // Click every link in the answers that does not lead to a web page.
        var links = page.Locator("[data-testid=message][data-role=assistant] a");
        for (var i = 0; i < await links.CountAsync(); i++)
        {
            var href = await links.Nth(i).GetAttributeAsync("href");
            if (href is null || !href.StartsWith("http", StringComparison.OrdinalIgnoreCase))
            {
                await links.Nth(i).ClickAsync();
            }
        }

        await Task.Delay(500, TestContext.Current.CancellationToken);
        Assert.Empty(dialogs);
        Assert.Null(await page.EvaluateAsync<string?>("() => window.__xss ?? null"));
        Assert.Empty(payloadRequests);
        Assert.Equal(0, Volatile.Read(ref trapHits));
        var dangerous = await page.EvaluateAsync<int>(
            "() => document.querySelectorAll('[data-testid=message] script, [data-testid=message] iframe, [data-testid=message] svg script, [data-testid=message] [onerror], [data-testid=message] [onload], [data-testid=message] [ontoggle], [data-testid=message] a[href^=\"javascript\" i], [data-testid=message] a[href^=\"data\" i]').length");
        Assert.Equal(0, dangerous);
        await Expect(page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("#/c/"));
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task ASecondUserNeverSeesTheFirstUsersConversations()
    {
        var alice = await fixture.NewPageAsync();
        await RegisterAsync(alice, NewEmail("alice"));
        var secret = "Secret plan " + Guid.NewGuid().ToString("N")[..8];
        await SendAsync(alice, secret);
        await WaitForStatusAsync(AssistantMessages(alice).Last, "complete");
        await Expect(Conversations(alice)).ToHaveCountAsync(1);
        var aliceConversationUrl = alice.Url;
        Assert.Contains("#/c/", aliceConversationUrl, StringComparison.Ordinal);

        var bob = await fixture.NewPageAsync();
        await RegisterAsync(bob, NewEmail("bob"));
        await Expect(bob.GetByText("No conversations yet.")).ToBeVisibleAsync();
        await Expect(Conversations(bob)).ToHaveCountAsync(0);

        await bob.GetByLabel("Search conversations").FillAsync(secret);
        await Expect(bob.GetByText("No conversation matches.")).ToBeVisibleAsync();
        await Expect(Conversations(bob)).ToHaveCountAsync(0);

        // Even with the address of Alice's conversation, Bob gets nothing.
        await bob.GotoAsync(new Uri(aliceConversationUrl).PathAndQuery + new Uri(aliceConversationUrl).Fragment);
        await Expect(bob.GetByRole(AriaRole.Alert)).ToContainTextAsync("does not exist");
        await Expect(Messages(bob)).ToHaveCountAsync(0);
        await Expect(bob.GetByText(secret)).ToHaveCountAsync(0);

        // Alice still has hers after Bob's attempts.
        await alice.ReloadAsync();
        await Expect(Messages(alice)).ToHaveCountAsync(2);
        await alice.Context.CloseAsync();
        await bob.Context.CloseAsync();
    }
}
