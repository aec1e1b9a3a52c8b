using System.Net.Http.Json;
using System.Text.Json;
using Jackcwf.Api.RobustnessTests.Infrastructure;

namespace Jackcwf.Api.RobustnessTests;

/// <summary>
/// One service on SQLite with a low message limit, two users who each own a finished exchange, and a
/// second, independent service whose tokens the first must refuse (its data protection keys differ).
/// </summary>
public sealed class BadInputService : IAsyncLifetime
{
    public const int MaxMessageChars = 1000;

    internal ApiProcess Api { get; private set; } = null!;
    internal TestUser Alice { get; private set; } = null!;
    internal TestUser Bob { get; private set; } = null!;
    internal Guid AliceConversation { get; private set; }
    internal Guid AliceAssistantMessage { get; private set; }
    internal Guid BobConversation { get; private set; }
    internal Guid BobUserMessage { get; private set; }
    internal Guid BobAssistantMessage { get; private set; }

    /// <summary>A valid access token issued by another service instance with its own key ring.</summary>
    internal string ForeignToken { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        var main = Service.StartAsync(new Dictionary<string, string?>
        {
            ["MAX_MESSAGE_CHARS"] = MaxMessageChars.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["DEMO_CHUNK_DELAY_MS"] = "0",
        });
        var other = Service.StartAsync();
        Api = await main;
        await using (var foreign = await other)
        {
            using var stranger = await TestUser.SignUpAsync(foreign);
            ForeignToken = stranger.AccessToken;
        }
        Alice = await TestUser.SignUpAsync(Api);
        Bob = await TestUser.SignUpAsync(Api);
        AliceConversation = await Alice.CreateConversationAsync("alice's");
        (_, AliceAssistantMessage) = await Alice.ChatAsync(AliceConversation, "hello from alice");
        BobConversation = await Bob.CreateConversationAsync("bob's");
        (BobUserMessage, BobAssistantMessage) = await Bob.ChatAsync(BobConversation, "hello from bob");
        // Only what the bad requests cause is judged (start-up readiness polling is another test's concern).
        Api.Log.Clear();
    }

    internal HttpClient Anonymous() => Api.CreateClient();

    internal async Task<HttpClient> CookieClientAsync(TestUser user)
    {
        var client = Api.CreateClient();
        using var login = await client.PostAsJsonAsync("api/auth/login?useCookies=true", new { email = user.Email, password = user.Password });
        Assert.True(login.IsSuccessStatusCode, $"cookie login answered {(int)login.StatusCode}");
        return client;
    }

    public async ValueTask DisposeAsync()
    {
        Alice?.Dispose();
        Bob?.Dispose();
        if (Api is not null)
        {
            await Api.DisposeAsync();
        }
    }
}
