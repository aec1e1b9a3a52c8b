using System.Runtime.CompilerServices;
using Jackcwf.Api.Ai.Pipeline;
using Microsoft.Extensions.AI;

namespace Jackcwf.Api.Tests.Pipeline;

/// <summary>
/// The hand-written stream the pipeline's layers hand updates through (<see cref="StreamObserver"/>)
/// keeps an async iterator's contract: nothing runs before the first MoveNextAsync, the end callback
/// runs once with what ended the stream, either cancellation token stops it, and updates that complete
/// later (awaited) behave as those already read.
/// </summary>
public sealed class StreamObserverTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async IAsyncEnumerable<ChatResponseUpdate> Source(
        int count, bool yieldEach, Exception? failAfter = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        for (var i = 0; i < count; i++)
        {
            if (yieldEach)
            {
                await Task.Yield();
            }
            cancellationToken.ThrowIfCancellationRequested();
            yield return new ChatResponseUpdate(ChatRole.Assistant, $"t{i}");
        }
        if (failAfter is not null)
        {
            throw failAfter;
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task HandsOnEveryUpdateInOrderAndEndsOnceWithNullWhenComplete(bool awaited)
    {
        var seen = new List<string>();
        var ends = new List<Exception?>();
        var stream = StreamObserver.Observe(Source(5, awaited, null, Ct), u => seen.Add(u.Text), ex =>
        {
            ends.Add(ex);
            return ValueTask.CompletedTask;
        }, Ct);
        var got = new List<string>();
        await foreach (var u in stream.WithCancellation(Ct))
        {
            got.Add(u.Text);
        }
        Assert.Equal(["t0", "t1", "t2", "t3", "t4"], got);
        Assert.Equal(got, seen);
        Assert.Equal([null], ends);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AFailureReachesTheEndCallbackOnceAndTheCallerReplacedWhenAsked(bool awaited)
    {
        var ends = new List<Exception?>();
        var original = new InvalidOperationException("provider text");
        var stream = StreamObserver.Start(
            ct => new(StartedStream.Unread(Source(2, awaited, original, ct).GetAsyncEnumerator(ct))),
            onEnd: ex =>
            {
                ends.Add(ex);
                return ValueTask.CompletedTask;
            },
            cancellationToken: Ct,
            fail: ex => new TimeoutException("classified", ex));
        var got = 0;
        var thrown = await Assert.ThrowsAsync<TimeoutException>(async () =>
        {
            await foreach (var _ in stream.WithCancellation(Ct))
            {
                got++;
            }
        });
        Assert.Equal(2, got);
        Assert.Same(original, thrown.InnerException);
        Assert.Same(thrown, Assert.Single(ends));
    }

    [Fact]
    public async Task AConsumerThatStopsEarlyEndsItAsCancelledAndDisposesTheSourceAndTheCallsResources()
    {
        var ends = new List<Exception?>();
        var resources = new Flag();
        var sourceDisposed = false;
        async IAsyncEnumerable<ChatResponseUpdate> Tracked([EnumeratorCancellation] CancellationToken ct = default)
        {
            try
            {
                await foreach (var u in Source(10, false, null, ct))
                {
                    yield return u;
                }
            }
            finally
            {
                sourceDisposed = true;
                Assert.False(resources.Set); // the call's resources outlive its source
            }
        }
        var stream = StreamObserver.Start(ct => new(StartedStream.Unread(Tracked(ct).GetAsyncEnumerator(ct), resources)), onEnd: ex =>
        {
            ends.Add(ex);
            return ValueTask.CompletedTask;
        }, cancellationToken: Ct);
        await foreach (var u in stream.WithCancellation(Ct))
        {
            if (u.Text == "t2")
            {
                break;
            }
        }
        Assert.IsType<OperationCanceledException>(Assert.Single(ends));
        Assert.True(sourceDisposed);
        Assert.True(resources.Set);
    }

    [Fact]
    public async Task NothingRunsBeforeTheFirstMoveNextAndAFailedStartIsNotAnEnd()
    {
        var started = 0;
        var ends = 0;
        var stream = StreamObserver.Start(_ =>
        {
            started++;
            throw new InvalidOperationException("refused");
        }, onEnd: _ =>
        {
            ends++;
            return ValueTask.CompletedTask;
        }, cancellationToken: Ct);
        var e = stream.GetAsyncEnumerator(Ct);
        Assert.Equal(0, started);
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await e.MoveNextAsync());
        Assert.False(await e.MoveNextAsync());
        await e.DisposeAsync();
        Assert.Equal(1, started);
        Assert.Equal(0, ends);
    }

    [Fact]
    public async Task AStartedStreamsHeadIsHandedOnMappedThenTheRestOfItsSource()
    {
        var seen = new List<string>();
        var stream = StreamObserver.Start(
            async ct => await StartedStream.StartAsync(Source(4, true, null, ct), ct),
            u => seen.Add(u.Text),
            cancellationToken: Ct,
            map: u => new ChatResponseUpdate(ChatRole.Assistant, u.Text.ToUpperInvariant()));
        var got = new List<string>();
        await foreach (var u in stream.WithCancellation(Ct))
        {
            got.Add(u.Text);
        }
        Assert.Equal(["T0", "T1", "T2", "T3"], got);
        Assert.Equal(got, seen);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task TheLayersTokenAndTheEnumeratorsTokenBothCancel(bool enumeratorToken)
    {
        using var layer = new CancellationTokenSource();
        using var enumerator = new CancellationTokenSource();
        CancellationToken given = default;
        var stream = StreamObserver.Start(ct =>
        {
            given = ct;
            return new(StartedStream.Unread(Source(3, false, null, ct).GetAsyncEnumerator(ct)));
        }, cancellationToken: layer.Token);
        var e = stream.GetAsyncEnumerator(enumerator.Token);
        Assert.True(await e.MoveNextAsync());
        (enumeratorToken ? enumerator : layer).Cancel();
        Assert.True(given.IsCancellationRequested);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await e.MoveNextAsync());
        await e.DisposeAsync();
    }

    /// <summary>
    /// Three layers on one source, as the pipeline stacks them. From their second update on, the outermost
    /// steps the steady layers below it itself (one pending read for all of them): each layer must still
    /// see what it saw when every layer awaited the one below it.
    /// </summary>
    private static IAsyncEnumerable<ChatResponseUpdate> Stacked(IAsyncEnumerable<ChatResponseUpdate> source, List<string> log,
        Func<string, Func<Exception, Exception>?>? fail = null, Func<string, Exception?, ValueTask>? onEnd = null)
    {
        var stream = source;
        foreach (var name in new[] { "inner", "middle", "outer" })
        {
            var below = stream;
            stream = StreamObserver.Start(ct => new(StartedStream.Unread(below.GetAsyncEnumerator(ct))),
                u => log.Add($"{name} {u.Text}"),
                ex =>
                {
                    log.Add($"{name} end {ex?.GetType().Name ?? "null"}");
                    return onEnd?.Invoke(name, ex) ?? ValueTask.CompletedTask;
                },
                Ct,
                map: name == "middle" ? u => new ChatResponseUpdate(ChatRole.Assistant, u.Text + "'") : null,
                fail: fail?.Invoke(name));
        }
        return stream;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task StackedLayersSeeEachUpdateInnermostFirstAndEndInnermostFirst(bool awaited)
    {
        var log = new List<string>();
        var got = new List<string>();
        await foreach (var u in Stacked(Source(4, awaited, null, Ct), log).WithCancellation(Ct))
        {
            got.Add(u.Text);
        }
        Assert.Equal(["t0'", "t1'", "t2'", "t3'"], got);
        var expected = Enumerable.Range(0, 4).SelectMany(i => new[] { $"inner t{i}", $"middle t{i}'", $"outer t{i}'" })
            .Concat(["inner end null", "middle end null", "outer end null"]);
        Assert.Equal(expected, log);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AFailureInStackedLayersReachesEachLayerOnceAsTheLayerBelowReplacedIt(bool awaited)
    {
        var log = new List<string>();
        var original = new InvalidOperationException("provider text");
        var stream = Stacked(Source(3, awaited, original, Ct), log, name => name switch
        {
            "inner" => ex => new TimeoutException("classified", ex),
            "middle" => ex => new ApplicationException("replaced", ex),
            _ => null,
        });
        var got = 0;
        var thrown = await Assert.ThrowsAsync<ApplicationException>(async () =>
        {
            await foreach (var _ in stream.WithCancellation(Ct))
            {
                got++;
            }
        });
        Assert.Equal(3, got);
        Assert.Same(original, Assert.IsType<TimeoutException>(thrown.InnerException).InnerException);
        Assert.Equal(["inner end TimeoutException", "middle end ApplicationException", "outer end ApplicationException"], log.Where(l => l.Contains(" end ")));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AnEndCallbackThatFailsFailsTheStackedLayersAboveIt(bool awaited)
    {
        var log = new List<string>();
        var incomplete = new InvalidDataException("no finish reason");
        var stream = Stacked(Source(3, awaited, null, Ct), log,
            onEnd: (name, ex) => name == "inner" && ex is null ? ValueTask.FromException(incomplete) : ValueTask.CompletedTask);
        var thrown = await Assert.ThrowsAsync<InvalidDataException>(async () =>
        {
            await foreach (var _ in stream.WithCancellation(Ct))
            {
            }
        });
        Assert.Same(incomplete, thrown);
        Assert.Equal(["inner end null", "middle end InvalidDataException", "outer end InvalidDataException"], log.Where(l => l.Contains(" end ")));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AConsumerThatStopsEarlyEndsStackedLayersOutermostFirstAsCancelled(bool awaited)
    {
        var log = new List<string>();
        await foreach (var u in Stacked(Source(10, awaited, null, Ct), log).WithCancellation(Ct))
        {
            if (u.Text == "t2'")
            {
                break;
            }
        }
        Assert.Equal(["outer end OperationCanceledException", "middle end OperationCanceledException", "inner end OperationCanceledException"],
            log.Where(l => l.Contains(" end ")));
    }

    private sealed class Flag : IDisposable
    {
        public bool Set { get; private set; }

        public void Dispose() => Set = true;
    }
}
