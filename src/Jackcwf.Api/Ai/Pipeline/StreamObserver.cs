using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using Microsoft.Extensions.AI;

namespace Jackcwf.Api.Ai.Pipeline;

/// <summary>
/// A pipeline layer's stream for the layers that act when a stream starts, on each update without
/// changing it, or when it ends (accounting, budget, telemetry, retries, the circuit breaker,
/// fallbacks, a bypassed cache). Its first <c>MoveNextAsync</c> runs the layer's start (an async step
/// that may read the stream up to its first token, <see cref="StartedStream"/>); it then hands on
/// the updates the start read, then the source's own: each <c>MoveNextAsync</c> is the source's,
/// checked in place when it completed at once (an update already read), awaited only when it did not.
/// An async iterator in its place runs its state machine, its promise and, for an update still
/// awaited, a continuation of its own on every update, and every update of a streamed call passes
/// through about fifteen layers (50 updates a typical answer): this is what a layer that only watches
/// costs instead.
/// <para>
/// <c>onEnd</c> runs once, when the stream ends after its start, with the exception that ended it
/// (null when complete; an <see cref="OperationCanceledException"/> when the consumer stopped reading
/// early); a failure of the start itself is not passed to it. Like an async iterator, nothing runs
/// before the first <c>MoveNextAsync</c>, and the token given to the layer and the one given to
/// <c>GetAsyncEnumerator</c> both cancel the call.
/// </para>
/// </summary>
internal sealed class StreamObserver : IAsyncEnumerable<ChatResponseUpdate>
{
    private readonly Func<CancellationToken, ValueTask<StartedStream>> _start;
    private readonly Action<ChatResponseUpdate>? _onUpdate;
    private readonly Func<Exception?, ValueTask>? _onEnd;
    private readonly Func<ChatResponseUpdate, ChatResponseUpdate>? _map;
    private readonly Func<Exception, Exception>? _fail;
    private readonly CancellationToken _token;

    private StreamObserver(Func<CancellationToken, ValueTask<StartedStream>> start, Action<ChatResponseUpdate>? onUpdate,
        Func<Exception?, ValueTask>? onEnd, Func<ChatResponseUpdate, ChatResponseUpdate>? map, Func<Exception, Exception>? fail, CancellationToken token)
    {
        _start = start;
        _onUpdate = onUpdate;
        _onEnd = onEnd;
        _map = map;
        _fail = fail;
        _token = token;
        _passThrough = onUpdate is null && onEnd is null && map is null && fail is null;
    }

    private readonly bool _passThrough;

    /// <summary>Runs <paramref name="onUpdate"/> on each update of <paramref name="source"/> and <paramref name="onEnd"/> once at its end.</summary>
    public static IAsyncEnumerable<ChatResponseUpdate> Observe(
        IAsyncEnumerable<ChatResponseUpdate> source, Action<ChatResponseUpdate>? onUpdate, Func<Exception?, ValueTask>? onEnd,
        CancellationToken cancellationToken = default) =>
        new StreamObserver(ct => new(StartedStream.Unread(source.GetAsyncEnumerator(ct))), onUpdate, onEnd, null, null, cancellationToken);

    /// <summary>
    /// Runs <paramref name="start"/> on the first <c>MoveNextAsync</c> (with the call's token), then hands on
    /// the stream it started; <paramref name="onUpdate"/> and <paramref name="onEnd"/> as in <see cref="Observe"/>.
    /// <paramref name="map"/> gives, once for each update read, the update handed on in its place (<paramref name="onUpdate"/>
    /// then sees that one); <paramref name="fail"/> gives, for an exception of the source after the start, the exception
    /// thrown in its place (<paramref name="onEnd"/> then sees that one).
    /// </summary>
    public static IAsyncEnumerable<ChatResponseUpdate> Start(
        Func<CancellationToken, ValueTask<StartedStream>> start, Action<ChatResponseUpdate>? onUpdate = null,
        Func<Exception?, ValueTask>? onEnd = null, CancellationToken cancellationToken = default,
        Func<ChatResponseUpdate, ChatResponseUpdate>? map = null, Func<Exception, Exception>? fail = null) =>
        new StreamObserver(start, onUpdate, onEnd, map, fail, cancellationToken);

    public IAsyncEnumerator<ChatResponseUpdate> GetAsyncEnumerator(CancellationToken cancellationToken = default) =>
        new Enumerator(this, cancellationToken);

    /// <remarks>
    /// Keeps the layer's callbacks, not the <see cref="StreamObserver"/>: once the stream started, the start
    /// delegate (and whatever its closure holds for the start only) is let go, as an open stream holds one of
    /// these per layer.
    /// </remarks>
    private sealed class Enumerator : IAsyncEnumerator<ChatResponseUpdate>
    {
        private Func<CancellationToken, ValueTask<StartedStream>>? _start;
        private readonly Action<ChatResponseUpdate>? _onUpdate;
        private readonly Func<Exception?, ValueTask>? _onEnd;
        private readonly Func<ChatResponseUpdate, ChatResponseUpdate>? _map;
        private readonly Func<Exception, Exception>? _fail;
        private readonly bool _passThrough;
        private readonly CancellationToken _token;
        private readonly CancellationTokenSource? _linked;
        private IAsyncEnumerator<ChatResponseUpdate>? _source;
        private IDisposable? _resources;
        private List<ChatResponseUpdate>? _head;
        private int _headIndex;
        private bool _endsWithHead;
        private ChatResponseUpdate? _current;
        // Finished: MoveNextAsync answers false (the end was reached, or the start failed).
        private bool _finished;
        // onEnd ran (or is running).
        private bool _ended;
        private bool _disposed;
        // The layers below this one that it steps itself (outermost first), and the source below the last of
        // them (null: none taken over; see MoveNextOfChainAsync).
        private Enumerator[]? _chain;
        private IAsyncEnumerator<ChatResponseUpdate>? _bottom;

        public Enumerator(StreamObserver owner, CancellationToken cancellationToken)
        {
            _start = owner._start;
            _onUpdate = owner._onUpdate;
            _onEnd = owner._onEnd;
            _map = owner._map;
            _fail = owner._fail;
            _passThrough = owner._passThrough;
            // As an async iterator's [EnumeratorCancellation]: either token cancels.
            var a = owner._token;
            if (!cancellationToken.CanBeCanceled || cancellationToken == a)
            {
                _token = a;
            }
            else if (!a.CanBeCanceled)
            {
                _token = cancellationToken;
            }
            else
            {
                _linked = CancellationTokenSource.CreateLinkedTokenSource(a, cancellationToken);
                _token = _linked.Token;
            }
        }

        public ChatResponseUpdate Current => _current ?? _source!.Current;

        public ValueTask<bool> MoveNextAsync()
        {
            if (_finished)
            {
                return new(false);
            }
            if (_source is null)
            {
                return StartAsync();
            }
            if (_head is not null)
            {
                return NextOfHead();
            }
            if (_passThrough)
            {
                return _source.MoveNextAsync();
            }
            if (_chain is not null || _source is Enumerator { IsSteady: true })
            {
                return MoveNextOfChain();
            }
            ValueTask<bool> next;
            try
            {
                next = _source.MoveNextAsync();
            }
            catch (Exception ex)
            {
                return FailAsync(ex);
            }
            return next.IsCompletedSuccessfully ? Step(next.Result) : AwaitAsync(next);
        }

        /// <summary>Started, its head handed on, not finished: what it does next depends only on its source.</summary>
        private bool IsSteady => _source is not null && _head is null && !_finished && !_disposed;

        /// <summary>
        /// The steady layers below this one are stepped here, from one read of the source below them, instead
        /// of each awaiting the one below it: a stream waiting for its next update holds one pending read
        /// (and its state machine) for all of them, not one per layer. Each layer still sees every update,
        /// end and failure in the same order as before, and is still disposed by the layer above it.
        /// </summary>
        private ValueTask<bool> MoveNextOfChain()
        {
            TakeOverSteadyLayers();
            ValueTask<bool> next;
            try
            {
                next = _bottom!.MoveNextAsync();
            }
            catch (Exception ex)
            {
                return FailChainAsync(ex, _chain!.Length);
            }
            return next.IsCompletedSuccessfully ? StepChain(next.Result) : AwaitChainAsync(next);
        }

        private void TakeOverSteadyLayers()
        {
            var bottom = _chain is null ? _source : _bottom;
            if (bottom is not Enumerator { IsSteady: true })
            {
                return;
            }
            var chain = new List<Enumerator>(_chain ?? []);
            while (bottom is Enumerator { IsSteady: true } layer)
            {
                chain.Add(layer);
                // Its Current is not read again: the update it last handed on is not kept for the rest of the stream.
                layer._current = null;
                if (layer._chain is { } own)
                {
                    // Stepped from here now: the layer's own list is not read again.
                    chain.AddRange(own);
                    bottom = layer._bottom;
                    layer._chain = null;
                    layer._bottom = null;
                }
                else
                {
                    bottom = layer._source;
                }
            }
            _chain = [.. chain];
            _bottom = bottom;
        }

        [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
        private async ValueTask<bool> AwaitChainAsync(ValueTask<bool> next)
        {
            bool has;
            try
            {
                has = await next;
            }
            catch (Exception ex)
            {
                return await FailChainAsync(ex, _chain!.Length);
            }
            return await StepChain(has);
        }

        /// <summary>What the source below the chain read, through each layer of it from the innermost, then this one.</summary>
        private ValueTask<bool> StepChain(bool has)
        {
            var chain = _chain!;
            if (!has)
            {
                return EndChainAsync();
            }
            var u = _bottom!.Current;
            for (var i = chain.Length - 1; i >= 0; i--)
            {
                var layer = chain[i];
                try
                {
                    if (layer._map is { } m)
                    {
                        u = m(u);
                    }
                    layer._onUpdate?.Invoke(u);
                }
                catch (Exception ex)
                {
                    // As if thrown by that layer's MoveNextAsync: the layers above it end with it.
                    return FailChainAsync(ex, i);
                }
            }
            if (_map is { } map)
            {
                u = map(u);
            }
            _current = u;
            _onUpdate?.Invoke(u);
            return new(true);
        }

        /// <summary>The source below the chain ended: each layer ends from the innermost, then this one.</summary>
        private async ValueTask<bool> EndChainAsync()
        {
            var chain = _chain!;
            for (var i = chain.Length - 1; i >= 0; i--)
            {
                var layer = chain[i];
                layer._finished = true;
                if (layer._onEnd is null)
                {
                    continue;
                }
                layer._ended = true;
                try
                {
                    await layer._onEnd(null);
                }
                catch (Exception ex)
                {
                    return await FailChainAsync(ex, i);
                }
            }
            return await Step(false);
        }

        /// <summary>
        /// <paramref name="ex"/> came out of the layer at <paramref name="from"/> in the chain (its length: the
        /// source below it): each layer above it fails with it as its own <see cref="FailAsync"/> would, then this one.
        /// </summary>
        private async ValueTask<bool> FailChainAsync(Exception ex, int from)
        {
            var chain = _chain!;
            for (var i = from - 1; i >= 0; i--)
            {
                var layer = chain[i];
                layer._finished = true;
                var thrown = layer._fail is { } fail ? fail(ex) : ex;
                if (layer._onEnd is not null)
                {
                    layer._ended = true;
                    try
                    {
                        await layer._onEnd(thrown);
                    }
                    catch (Exception e)
                    {
                        thrown = e;
                    }
                }
                ex = thrown;
            }
            return await FailAsync(ex);
        }

        private async ValueTask<bool> StartAsync()
        {
            StartedStream started;
            var start = _start!;
            _start = null;
            try
            {
                started = await start(_token);
            }
            catch
            {
                _finished = true;
                throw;
            }
            _source = started.Enumerator;
            _resources = started.Resources;
            if (started.Head is { Count: > 0 } head)
            {
                _head = head;
                _endsWithHead = started.Ended;
            }
            else if (started.Ended)
            {
                _finished = true;
                if (_onEnd is not null)
                {
                    _ended = true;
                    await _onEnd(null);
                }
                return false;
            }
            return await MoveNextAsync();
        }

        private ValueTask<bool> NextOfHead()
        {
            var head = _head!;
            if (_headIndex < head.Count)
            {
                // Handed on once: the list lets go of each update, so an open stream does not hold them.
                var u = head[_headIndex];
                head[_headIndex++] = null!;
                _current = u = _map is { } map ? map(u) : u;
                _onUpdate?.Invoke(u);
                return new(true);
            }
            _head = null;
            _current = null;
            if (_endsWithHead)
            {
                return Step(false);
            }
            return MoveNextAsync();
        }

        private ValueTask<bool> Step(bool has)
        {
            if (has)
            {
                var u = _source!.Current;
                if (_map is { } map)
                {
                    _current = u = map(u);
                }
                _onUpdate?.Invoke(u);
                return new(true);
            }
            _finished = true;
            if (_onEnd is null)
            {
                return new(false);
            }
            _ended = true;
            var end = _onEnd(null);
            return end.IsCompletedSuccessfully ? new(false) : EndedAsync(end);
        }

        private static async ValueTask<bool> EndedAsync(ValueTask end)
        {
            await end;
            return false;
        }

        [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
        private async ValueTask<bool> AwaitAsync(ValueTask<bool> next)
        {
            bool has;
            try
            {
                has = await next;
            }
            catch (Exception ex) when (_onEnd is not null || _fail is not null)
            {
                return await FailAsync(ex);
            }
            return await Step(has);
        }

        private async ValueTask<bool> FailAsync(Exception ex)
        {
            _finished = true;
            var thrown = _fail is { } fail ? fail(ex) : ex;
            if (_onEnd is not null)
            {
                _ended = true;
                await _onEnd(thrown);
            }
            if (ReferenceEquals(thrown, ex))
            {
                ExceptionDispatchInfo.Throw(ex);
            }
            throw thrown;
        }

        public async ValueTask DisposeAsync()
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            _finished = true;
            try
            {
                if (_source is not null && !_ended && _onEnd is not null)
                {
                    _ended = true;
                    await _onEnd(new OperationCanceledException("The consumer stopped reading the stream."));
                }
            }
            finally
            {
                try
                {
                    if (_source is not null)
                    {
                        await _source.DisposeAsync();
                    }
                }
                finally
                {
                    _resources?.Dispose();
                    _linked?.Dispose();
                }
            }
        }
    }
}
