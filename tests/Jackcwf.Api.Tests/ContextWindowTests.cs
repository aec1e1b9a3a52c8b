using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Jackcwf.Testing;

namespace Jackcwf.Api.Tests;

/// <summary>A small context window (4 messages, 1,000 characters), so a conversation of a few turns is longer than twice it.</summary>
public static class SmallWindow
{
    public const int Messages = 4;
    public const int Chars = 1000;

    public static IReadOnlyDictionary<string, string?> Environment => new Dictionary<string, string?>
    {
        ["CONTEXT_MAX_MESSAGES"] = Messages.ToString(),
        ["CONTEXT_MAX_CHARS"] = Chars.ToString(),
    };
}

public sealed class SqliteSmallWindowFixture : SqliteServiceFixture
{
    protected override IReadOnlyDictionary<string, string?> ExtraEnvironment => SmallWindow.Environment;
}

public sealed class PostgresSmallWindowFixture : PostgresServiceFixture
{
    protected override IReadOnlyDictionary<string, string?> ExtraEnvironment => SmallWindow.Environment;
}

/// <summary>
/// What the model is sent from a conversation longer than twice the context window: on PostgreSQL such a turn
/// walks its branch from the parent instead of reading the whole conversation, and must send the same window.
/// </summary>
public abstract class ContextWindowTests<TFixture>(TFixture fx) where TFixture : ServiceFixture
{
    private const string Model = "openai/gpt-4o-mini";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Each request the fake provider received whose last user message is <paramref name="last"/>: its messages as (role, text).</summary>
    private List<List<(string Role, string Text)>> Sent(string last) =>
        fx.Fake.ChatRequests.Where(r => r.LastUserText == last)
            .Select(r => JsonDocument.Parse(r.Body).RootElement.GetProperty("messages").EnumerateArray()
                .Select(m => (m.GetProperty("role").GetString()!, m.GetProperty("content").ValueKind == JsonValueKind.String
                    ? m.GetProperty("content").GetString()!
                    : string.Concat(m.GetProperty("content").EnumerateArray().Select(p => p.GetProperty("text").GetString()))))
                .ToList())
            .ToList();

    /// <summary>The one request whose last user message is <paramref name="last"/>.</summary>
    private List<(string Role, string Text)> SentOnce(string last) => Assert.Single(Sent(last));

    /// <summary><paramref name="turns"/> questions, each answered (the fake provider echoes them): their (user, assistant) ids and texts.</summary>
    private static async Task<List<(Guid User, Guid Answer, string Text)>> TurnsAsync(TestUser u, Guid c, int turns)
    {
        var sent = new List<(Guid, Guid, string)>();
        for (var i = 1; i <= turns; i++)
        {
            var text = $"q{i} {Guid.NewGuid():N}";
            var r = await u.SendAsync(c, new { content = text });
            Assert.Equal(text, r.GetProperty("assistantMessage").GetProperty("content").GetString());
            sent.Add((r.GetProperty("userMessage").GetProperty("id").GetGuid(), r.GetProperty("assistantMessage").GetProperty("id").GetGuid(), text));
        }
        return sent;
    }

    private static (string, string)[] Pairs(params string[] questions) =>
        [.. questions.SelectMany(q => new[] { ("user", q), ("assistant", q) })];

    [Fact]
    public async Task ALongConversationSendsTheNewestWindowOfTheChosenBranch()
    {
        var u = await fx.CreateUserAsync();
        var c = await u.CreateConversationAsync(new { model = Model, systemPrompt = "Be brief." });
        // 24 messages: six times the window.
        var q = await TurnsAsync(u, c, 12);

        var next = $"next {Guid.NewGuid():N}";
        await u.SendAsync(c, new { content = next });
        Assert.Equal([("system", "Be brief."), .. Pairs(q[10].Text, q[11].Text), ("user", next)], SentOnce(next));

        // Regenerating the tenth answer: the window is the tenth question's own ancestors, not the newest messages.
        var again = await u.SendAsync(c, new { parentMessageId = q[9].User });
        Assert.Equal(q[9].User, again.GetProperty("assistantMessage").GetProperty("parentMessageId").GetGuid());
        Assert.Equal([("system", "Be brief."), .. Pairs(q[7].Text, q[8].Text), ("user", q[9].Text)], Sent(q[9].Text)[^1]);

        // The same with an Idempotency-Key (a turn that may replay reads its branch another way).
        await u.SendAsync(c, new { parentMessageId = q[6].User }, Guid.NewGuid().ToString());
        Assert.Equal([("system", "Be brief."), .. Pairs(q[4].Text, q[5].Text), ("user", q[6].Text)], Sent(q[6].Text)[^1]);
        var keyed = $"keyed {Guid.NewGuid():N}";
        await u.SendAsync(c, new { content = keyed, parentMessageId = q[11].Answer }, Guid.NewGuid().ToString());
        Assert.Equal([("system", "Be brief."), .. Pairs(q[10].Text, q[11].Text), ("user", keyed)], SentOnce(keyed));

        Assert.Equal(24 + 2 + 1 + 1 + 2, (await u.GetConversationAsync(c))["messages"]!.AsArray().Count);
    }

    [Fact]
    public async Task ABranchOffAnOldMessageOfALongConversationSendsThatBranchsWindow()
    {
        var u = await fx.CreateUserAsync();
        var c = await u.CreateConversationAsync(new { model = Model });
        var q = await TurnsAsync(u, c, 12);

        // Off the third answer: the second and third turns, then the new question.
        var branch = $"branch {Guid.NewGuid():N}";
        var branched = await u.SendAsync(c, new { content = branch, parentMessageId = q[2].Answer });
        Assert.Equal(q[2].Answer, branched.GetProperty("userMessage").GetProperty("parentMessageId").GetGuid());
        Assert.Equal([.. Pairs(q[1].Text, q[2].Text), ("user", branch)], SentOnce(branch));

        // Without a parent, the next message continues the newest branch: the one just made.
        var onward = $"onward {Guid.NewGuid():N}";
        var continued = await u.SendAsync(c, new { content = onward });
        Assert.Equal(branched.GetProperty("assistantMessage").GetProperty("id").GetGuid(), continued.GetProperty("userMessage").GetProperty("parentMessageId").GetGuid());
        Assert.Equal([.. Pairs(q[2].Text, branch), ("user", onward)], SentOnce(onward));

        // Editing the last question of the first branch: a sibling of it, after the eleventh turn.
        var edit = $"edit {Guid.NewGuid():N}";
        await u.SendAsync(c, new { content = edit, parentMessageId = q[10].Answer });
        Assert.Equal([.. Pairs(q[9].Text, q[10].Text), ("user", edit)], SentOnce(edit));

        // A new root: nothing before it.
        var root = $"root {Guid.NewGuid():N}";
        await u.SendAsync(c, new { content = root, parentMessageId = (Guid?)null });
        Assert.Equal([("user", root)], SentOnce(root));

        // A parent from another conversation is not one of this conversation's messages.
        var other = await u.CreateConversationAsync(new { model = Model });
        var elsewhere = (await TurnsAsync(u, other, 1))[0];
        var r = await u.Http.PostAsJsonAsync($"api/conversations/{c}/messages", new { content = "stray", parentMessageId = elsewhere.Answer }, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        Assert.Contains("is not a message of this conversation", await r.Content.ReadAsStringAsync(Ct));
        Assert.Equal(24 + 8, (await u.GetConversationAsync(c))["messages"]!.AsArray().Count);
    }

    [Fact]
    public async Task ALongConversationsWindowSkipsFailedAnswersAndEndsAtTheCharacterLimit()
    {
        var u = await fx.CreateUserAsync();
        var c = await u.CreateConversationAsync(new { model = Model });
        var q = await TurnsAsync(u, c, 10);
        // The eleventh question's answer fails, empty; the twelfth continues after it.
        var failing = $"fails {Guid.NewGuid():N}";
        fx.Fake.Enqueue(FakeScenario.Error(401, "no"));
        var failed = await u.Http.PostAsJsonAsync($"api/conversations/{c}/messages", new { content = failing }, Ct);
        Assert.Equal(HttpStatusCode.BadGateway, failed.StatusCode);
        var after = $"after {Guid.NewGuid():N}";
        await u.SendAsync(c, new { content = after });

        // Four messages that count (the failed answer does not), newest first: the tenth answer, then the eleventh
        // and twelfth questions and the twelfth answer; the window starts at a user message, so without that answer.
        var next = $"next {Guid.NewGuid():N}";
        await u.SendAsync(c, new { content = next });
        Assert.Equal([("user", failing), ("user", after), ("assistant", after), ("user", next)], SentOnce(next));

        // A question of 960 characters answered briefly: with its answer (12) it fits the 1,000 characters, the
        // answer before it (37) does not, so the window is those two although four messages would fit.
        var longQuestion = "long " + new string('x', 955);
        fx.Fake.Enqueue(FakeScenario.Answer("short answer"));
        await u.SendAsync(c, new { content = longQuestion });
        var last = $"last {Guid.NewGuid():N}";
        await u.SendAsync(c, new { content = last });
        Assert.Equal([("user", longQuestion), ("assistant", "short answer"), ("user", last)], SentOnce(last));
        Assert.Equal(10, q.Count);
    }
}

public sealed class SqliteContextWindowTests(SqliteSmallWindowFixture fx) : ContextWindowTests<SqliteSmallWindowFixture>(fx), IClassFixture<SqliteSmallWindowFixture>;

public sealed class PostgresContextWindowTests(PostgresSmallWindowFixture fx) : ContextWindowTests<PostgresSmallWindowFixture>(fx), IClassFixture<PostgresSmallWindowFixture>;
