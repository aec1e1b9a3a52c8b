using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using Jackcwf.Api.Ai.Pipeline;
using Microsoft.Extensions.AI;

namespace Jackcwf.Api.Tests.Pipeline;

/// <summary>
/// <see cref="ProviderTelemetryChatClient"/>: the provider's own updates reach the caller, the
/// <c>gen_ai.*</c> metrics still see the response model, token usage and errors, and an open stream
/// does not keep the updates it has already handed on.
/// </summary>
public sealed class ProviderTelemetryTests
{
    private const string Source = "Experimental.Microsoft.Extensions.AI";

    private static ChatResponseUpdate Chunk(string text) =>
        new(ChatRole.Assistant, text) { ResponseId = "resp-1", ModelId = "model-served", RawRepresentation = new byte[64] };

    private static IEnumerable<ChatResponseUpdate> Answer(long input, long output) =>
    [
        Chunk("Hello"),
        Chunk(" there"),
        new ChatResponseUpdate
        {
            ResponseId = "resp-1",
            ModelId = "model-served",
            FinishReason = ChatFinishReason.Stop,
            Contents = [new UsageContent(new UsageDetails { InputTokenCount = input, OutputTokenCount = output })],
        },
    ];

    [Fact]
    public async Task TheCallerGetsTheProvidersOwnUpdatesAndTheMetricsSeeModelAndUsage()
    {
        var model = $"model-{Guid.NewGuid():N}";
        using var metrics = new GenAiMeasurements(model);
        var sent = Answer(12, 34).ToList();
        using var client = new ProviderTelemetryChatClient(new ScriptedClient(_ => sent.ToAsync()), null, Source);

        var got = new List<ChatResponseUpdate>();
        await foreach (var u in client.GetStreamingResponseAsync([new(ChatRole.User, "hi")], new ChatOptions { ModelId = model }, TestContext.Current.CancellationToken))
        {
            got.Add(u);
        }

        Assert.Equal(sent.Count, got.Count);
        Assert.All(sent.Zip(got), p => Assert.Same(p.First, p.Second));
        Assert.Equal(new long[] { 12, 34 }, metrics.Tokens.OrderBy(t => t.Type).Select(t => t.Value));
        Assert.Equal(["input", "output"], metrics.Tokens.Select(t => t.Type).Order());
        var duration = Assert.Single(metrics.Durations);
        Assert.Equal("model-served", duration.ResponseModel);
        Assert.Null(duration.ErrorType);
    }

    [Fact]
    public async Task AFailedStreamIsRecordedWithItsErrorAndTheErrorReachesTheCaller()
    {
        var model = $"model-{Guid.NewGuid():N}";
        using var metrics = new GenAiMeasurements(model);
        using var client = new ProviderTelemetryChatClient(new ScriptedClient(_ => Failing()), null, Source);

        var got = new List<string>();
        await Assert.ThrowsAsync<InvalidOperationException>(async () =>
        {
            await foreach (var u in client.GetStreamingResponseAsync([new(ChatRole.User, "hi")], new ChatOptions { ModelId = model }, TestContext.Current.CancellationToken))
            {
                got.Add(u.Text);
            }
        });

        Assert.Equal(["Hello"], got);
        Assert.Equal(typeof(InvalidOperationException).FullName, Assert.Single(metrics.Durations).ErrorType);

        static async IAsyncEnumerable<ChatResponseUpdate> Failing()
        {
            await Task.Yield();
            yield return Chunk("Hello");
            throw new InvalidOperationException("the provider went away");
        }
    }

    [Fact]
    public async Task AnOpenStreamDoesNotHoldTheUpdatesItHandedOn()
    {
        using var stall = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        using var client = new ProviderTelemetryChatClient(new ScriptedClient(ct => Stalling(ct)), null, Source);
        var handedOn = new List<WeakReference>();
        var e = client.GetStreamingResponseAsync([new(ChatRole.User, "hi")], new ChatOptions { ModelId = "model-held" }, stall.Token).GetAsyncEnumerator(stall.Token);
        try
        {
            for (var i = 0; i < 4; i++)
            {
                Assert.True(await e.MoveNextAsync());
                Track(handedOn, e);
            }
            await Task.Yield();
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();

            // The last one is still the enumerator's current update; none before it is held.
            Assert.All(handedOn.Take(3), w => Assert.False(w.IsAlive));
        }
        finally
        {
            await stall.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await e.MoveNextAsync());
            await e.DisposeAsync();
        }

        static async IAsyncEnumerable<ChatResponseUpdate> Stalling([EnumeratorCancellation] CancellationToken ct = default)
        {
            for (var i = 0; i < 4; i++)
            {
                await Task.Yield();
                yield return Chunk($"word {i} ");
            }
            await Task.Delay(Timeout.Infinite, ct);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Track(List<WeakReference> refs, IAsyncEnumerator<ChatResponseUpdate> e) => refs.Add(new WeakReference(e.Current));

    private sealed class ScriptedClient(Func<CancellationToken, IAsyncEnumerable<ChatResponseUpdate>> answer) : IChatClient
    {
        public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException();

        public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            answer(cancellationToken);

        public object? GetService(Type serviceType, object? serviceKey = null) => null;

        public void Dispose()
        {
        }
    }

    /// <summary>The gen_ai measurements of one request model (tests run in parallel and share the meter name).</summary>
    private sealed class GenAiMeasurements : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly string _model;
        private readonly Lock _gate = new();

        public List<(string? Type, long Value)> Tokens { get; } = [];
        public List<(string? ResponseModel, string? ErrorType)> Durations { get; } = [];

        public GenAiMeasurements(string model)
        {
            _model = model;
            _listener.InstrumentPublished = (i, l) =>
            {
                if (i.Meter.Name == Source && i.Name is "gen_ai.client.token.usage" or "gen_ai.client.operation.duration")
                {
                    l.EnableMeasurementEvents(i);
                }
            };
            _listener.SetMeasurementEventCallback<int>((i, v, tags, _) => OnMeasurement(i.Name, v, tags));
            _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => OnMeasurement(i.Name, v, tags));
            _listener.Start();
        }

        private void OnMeasurement(string name, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            string? Tag(ReadOnlySpan<KeyValuePair<string, object?>> t, string key)
            {
                foreach (var kv in t)
                {
                    if (kv.Key == key)
                    {
                        return kv.Value?.ToString();
                    }
                }
                return null;
            }
            if (Tag(tags, "gen_ai.request.model") != _model)
            {
                return;
            }
            lock (_gate)
            {
                if (name == "gen_ai.client.token.usage")
                {
                    Tokens.Add((Tag(tags, "gen_ai.token.type"), (long)value));
                }
                else
                {
                    Durations.Add((Tag(tags, "gen_ai.response.model"), Tag(tags, "error.type")));
                }
            }
        }

        public void Dispose() => _listener.Dispose();
    }
}

internal static class AsyncEnumerableTestExtensions
{
    public static async IAsyncEnumerable<T> ToAsync<T>(this IEnumerable<T> items)
    {
        foreach (var item in items)
        {
            await Task.Yield();
            yield return item;
        }
    }
}
