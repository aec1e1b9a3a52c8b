using Jackcwf.Api.Ai;
using Jackcwf.Api.Ai.Pipeline;
using Jackcwf.Api.Limits;
using Jackcwf.Api.Usage;
using Jackcwf.Testing;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace Jackcwf.Api.Tests.Pipeline;

/// <summary>
/// Issue 12, hole 10: budgets are reserved before the provider call, atomically in the shared limit
/// store, so concurrent calls overshoot by at most one call's maximum: with Redis (what every replica
/// shares) and with Redis down (each replica falls back to its own store).
/// </summary>
public sealed class BudgetReservationTests
{
    private static readonly ModelInfo Paid = new("openai/gpt-4o-mini", Providers.OpenAI, "gpt-4o-mini", "mini", 1m, 2m, 100);
    // About ten calls fit (each may cost 0.000209, costs 0.0002).
    private const decimal Budget = 0.002m;

    [Fact]
    public async Task ConcurrentCallsThroughRedisClosesHole10()
    {
        await using var db = await TestRedis.CreateDatabaseAsync(TestContext.Current.CancellationToken);
        await using var redis = await ConnectionMultiplexer.ConnectAsync(db.Configuration);
        await AssertBudgetHoldsAsync(new RedisLimitStore(redis, new InProcessLimitStore(), NullLogger<RedisLimitStore>.Instance));
    }

    [Fact]
    public async Task ConcurrentCallsWithRedisDownClosesHole10()
    {
        // Nothing listens there: every Redis command fails, and the store counts on this replica.
        // Commands fail at once, as the service's connection makes them (BacklogPolicy.FailFast), not after a timeout.
        var down = ConfigurationOptions.Parse($"127.0.0.1:{FreePort.Get()},abortConnect=false,connectTimeout=200,syncTimeout=200,asyncTimeout=200");
        down.BacklogPolicy = BacklogPolicy.FailFast;
        await using var redis = await ConnectionMultiplexer.ConnectAsync(down);
        await AssertBudgetHoldsAsync(new RedisLimitStore(redis, new InProcessLimitStore(), NullLogger<RedisLimitStore>.Instance));
    }

    private static async Task AssertBudgetHoldsAsync(ILimitStore store)
    {
        var limiter = new StoreSpendLimiter(store, budget: Budget);
        var client = new BudgetChatClient(new FakeChatClient { Default = new FakeTurn { InputTokens = 0, OutputTokens = 100 } }, limiter, [Paid]);
        ChatMessage[] prompt = [new(ChatRole.User, "hello")];
        var maxCost = client.MaxCost(prompt, new ChatOptions { MaxOutputTokens = 100 });
        var outcomes = await Task.WhenAll(Enumerable.Range(0, 40).Select(async i =>
        {
            var call = new ChatCall { UserId = limiter.User, Source = UsageLedger.Gateway, RequestedModel = Paid };
            try
            {
                await foreach (var _ in client.GetStreamingResponseAsync(prompt, call.Attach(new ChatOptions { MaxOutputTokens = 100 }), TestContext.Current.CancellationToken))
                {
                }
                return true;
            }
            catch (LimitRefusedException)
            {
                return false;
            }
        }));
        var answered = outcomes.Count(a => a);
        Assert.InRange(answered, 1, 39);
        var spend = await limiter.SpendAsync();
        Assert.True(spend <= Budget + maxCost, $"spent {spend}: more than the budget {Budget} plus one call's maximum {maxCost}");
        Assert.Equal(answered * Paid.Cost(0, 100), spend);
    }
}
