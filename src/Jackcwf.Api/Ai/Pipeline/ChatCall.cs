using System.Diagnostics;
using Microsoft.Extensions.AI;

namespace Jackcwf.Api.Ai.Pipeline;

/// <summary>
/// One call through the pipeline: who asks (the middlewares account, limit and cache per user) and,
/// filled in by the middlewares as the call runs, what happened (which model answered, tokens, cost,
/// cache). Carried in <see cref="ChatOptions.AdditionalProperties"/> and removed before the provider
/// sees the options. The callers (chat runner, /v1 gateway) read the outcome once the stream ends.
/// </summary>
public sealed class ChatCall
{
    public const string OptionsKey = "jackcwf.call";

    public required Guid UserId { get; init; }
    public Guid? ApiKeyId { get; init; }
    /// <summary><see cref="Usage.UsageLedger.Chat"/> or <see cref="Usage.UsageLedger.Gateway"/>.</summary>
    public required string Source { get; init; }
    public required ModelInfo RequestedModel { get; init; }
    public CacheDirective Cache { get; init; }
    /// <summary>When the request was accepted (<see cref="Stopwatch.GetTimestamp"/>), for time to first token.</summary>
    public long AcceptedTimestamp { get; init; } = Stopwatch.GetTimestamp();

    /// <summary>
    /// The call's generation slot, freed together with the settlement (one store call instead of two): by the
    /// budget step once the call ends, or by the caller when it <see cref="DefersSettlement"/>. The caller's own
    /// release then does nothing.
    /// </summary>
    public Limits.GenerationSlot? Slot { get; init; }

    /// <summary>
    /// The spend the caller already reserved for this call (the /v1 gateway reserves it in the same store call
    /// as its limits): the budget step settles it instead of reserving again. Taken once (<see cref="TakeReservation"/>).
    /// </summary>
    public Limits.SpendReservation? Reservation { private get; init; }

    private int _reservationTaken;

    /// <summary>The reservation made before the pipeline, the first time it is asked; null after, or when there was none.</summary>
    public Limits.SpendReservation? TakeReservation() =>
        Reservation is not null && Interlocked.Exchange(ref _reservationTaken, 1) == 0 ? Reservation : null;

    /// <summary>
    /// The budget step leaves the settlement (the real cost, and the generation slot's release in the same store
    /// call) to the caller instead of sending it as the call ends: the chat runner sends it after the answer's final
    /// write, together with the event log's final event (<see cref="TakeDeferredSettlement"/>). The /v1 gateway
    /// does not set it: its settlement goes out as the provider's answer ends, before the response is written.
    /// </summary>
    public bool DefersSettlement { get; init; }

    private Func<ValueTask>? _deferredSettlement;

    /// <summary>The budget step's settlement, left to the caller (<see cref="DefersSettlement"/>).</summary>
    internal void DeferSettlement(Func<ValueTask> settle) => Volatile.Write(ref _deferredSettlement, settle);

    /// <summary>
    /// The settlement the budget step left, the first time it is asked; null after, or when the step never
    /// settled (the call was refused before it, or the pipeline was not reached). Calling it queues its store
    /// call before it returns.
    /// </summary>
    public Func<ValueTask>? TakeDeferredSettlement() => Interlocked.Exchange(ref _deferredSettlement, null);

    /// <summary>Why a cancelled call stopped (<c>stopped</c> by the user, <c>interrupted</c> by a shutdown), when the caller knows.</summary>
    public Func<string?>? StopReason { get; init; }

    /// <summary>The model whose answer the caller receives (a fallback's, when the requested one failed).</summary>
    public ModelInfo AnsweringModel { get; set; } = null!;
    /// <summary><c>HIT</c>, <c>MISS</c> or <c>BYPASS</c>, as the <c>X-Cache</c> response header says it.</summary>
    public string CacheStatus { get; private set; } = CacheStatuses.Bypass;

    /// <summary>
    /// Told the cache decision as soon as it is made (before any provider call), so a caller whose
    /// output starts elsewhere (the chat runner's SSE stream) can send <c>X-Cache</c> with its headers.
    /// </summary>
    public Action<string>? CacheDecided { get; init; }
    /// <summary>Tokens a cache hit saved (what the original answer cost in tokens).</summary>
    public long TokensSaved { get; set; }
    public bool FirstTokenSeen { get; set; }
    public ChatFinishReason? FinishReason { get; set; }

    public long InputTokens { get; private set; }
    public long OutputTokens { get; private set; }
    public decimal CostUsd { get; private set; }
    public bool Cached => CacheStatus == CacheStatuses.Hit;

    private long _reportedInput, _reportedOutput;
    private bool _usageReported, _settled;
    private int _textLength;
    private object? _lastObserved;

    /// <summary>Records the response cache's decision for this call (<see cref="CacheStatuses"/>).</summary>
    public void DecideCache(string status)
    {
        CacheStatus = status;
        CacheDecided?.Invoke(status);
    }

    /// <summary>Takes usage and text from one streamed update.</summary>
    public void Observe(ChatResponseUpdate update)
    {
        // Every observing middleware passes the same update object on: count it once.
        if (ReferenceEquals(update, _lastObserved))
        {
            return;
        }
        _lastObserved = update;
        var contents = update.Contents;
        for (var i = 0; i < contents.Count; i++)
        {
            if (contents[i] is UsageContent u)
            {
                Observe(u.Details);
            }
        }
        _textLength += update.Text.Length;
        FinishReason = update.FinishReason ?? FinishReason;
    }

    /// <summary>Takes usage and text from a whole (non-streamed) response.</summary>
    public void Observe(ChatResponse response)
    {
        if (ReferenceEquals(response, _lastObserved))
        {
            return;
        }
        _lastObserved = response;
        if (response.Usage is { } u)
        {
            Observe(u);
        }
        _textLength += response.Text.Length;
        FinishReason = response.FinishReason ?? FinishReason;
    }

    private void Observe(UsageDetails u)
    {
        _usageReported = true;
        _reportedInput = u.InputTokenCount ?? _reportedInput;
        _reportedOutput = u.OutputTokenCount ?? _reportedOutput;
    }

    /// <summary>
    /// Fixes tokens and cost once the call ended: reported usage, else an estimate; the answering
    /// model's prices; nothing for a cache hit. Idempotent (budget and accounting both ask).
    /// </summary>
    public void Settle(IEnumerable<ChatMessage> prompt, bool failed)
    {
        if (_settled)
        {
            return;
        }
        _settled = true;
        if (Cached)
        {
            return;
        }
        (InputTokens, OutputTokens) = _usageReported ? (_reportedInput, _reportedOutput) : UsageEstimate.For(prompt, _textLength, failed);
        CostUsd = AnsweringModel.Cost(InputTokens, OutputTokens);
    }

    /// <summary>The call of these options; middlewares only run for calls the platform makes, so it is always there.</summary>
    public static ChatCall Of(ChatOptions? options) =>
        options?.AdditionalProperties?.TryGetValue(OptionsKey, out var v) == true && v is ChatCall c
            ? c
            : throw new InvalidOperationException("Pipeline calls carry a ChatCall in ChatOptions.AdditionalProperties.");

    /// <summary>Options for a call: <paramref name="options"/> (or new ones) carrying this call.</summary>
    public ChatOptions Attach(ChatOptions? options = null)
    {
        AnsweringModel ??= RequestedModel;
        options ??= new ChatOptions();
        (options.AdditionalProperties ??= [])[OptionsKey] = this;
        return options;
    }

    /// <summary>The options as the provider may see them: without the call.</summary>
    public static ChatOptions? Strip(ChatOptions? options)
    {
        if (options?.AdditionalProperties is not { } props || !props.ContainsKey(OptionsKey))
        {
            return options;
        }
        var clone = options.Clone();
        if (props.Count == 1)
        {
            // Only the call (the usual case): no properties left.
            clone.AdditionalProperties = null;
            return clone;
        }
        var rest = new AdditionalPropertiesDictionary();
        foreach (var (key, value) in props)
        {
            if (key != OptionsKey)
            {
                rest[key] = value;
            }
        }
        clone.AdditionalProperties = rest;
        return clone;
    }
}
