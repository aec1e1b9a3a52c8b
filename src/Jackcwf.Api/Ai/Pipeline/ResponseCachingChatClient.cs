using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Jackcwf.Api.Telemetry;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Caching.Hybrid;

namespace Jackcwf.Api.Ai.Pipeline;

/// <summary>
/// The response cache. Exact: the key is a hash of the scope (the user unless the scope is global),
/// the model, every message with its role, name and parts (system prompt, images and tool calls
/// included) and every option that changes an answer (temperature, top-p, max tokens, stop, seed,
/// penalties, tools, tool choice, response format, strictness: see <c>AddOptions</c>).
/// Semantic: on an exact miss, the last user message's embedding is compared with earlier prompts of
/// the same scope with the same earlier messages and parameters; the nearest at or above the
/// threshold answers. A hit streams the stored chunks and costs nothing; only complete text answers
/// are stored. <c>no-cache</c> skips the read, <c>no-store</c> the read and the write.
/// </summary>
public sealed class ResponseCachingChatClient(
    IChatClient inner, IResponseCacheStore store, ResponseCacheOptions options, JackcwfMetrics? metrics = null,
    IEmbeddingGenerator<string, Embedding<float>>? embeddings = null) : DelegatingChatClient(inner)
{
    /// <summary>Earlier prompts kept per scope for the semantic comparison.</summary>
    public const int SemanticEntriesPerScope = 64;

    private TimeSpan Ttl => TimeSpan.FromSeconds(options.TtlSeconds);

    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? chatOptions = null, CancellationToken cancellationToken = default)
    {
        var call = ChatCall.Of(chatOptions);
        var list = messages as IReadOnlyList<ChatMessage> ?? [.. messages];
        var (keys, hit) = await LookupAsync(call, list, chatOptions, cancellationToken);
        if (hit is not null)
        {
            var message = new ChatMessage(ChatRole.Assistant, string.Concat(hit.Chunks));
            return new ChatResponse(message) { ModelId = hit.Model, FinishReason = Finish(hit.FinishReason) };
        }
        var response = await base.GetResponseAsync(list, chatOptions, cancellationToken);
        if (keys is not null && response.FinishReason is not null && IsPlainText(response.Messages.SelectMany(m => m.Contents)))
        {
            call.Observe(response);
            call.Settle(list, failed: false);
            await StoreAsync(keys, new CachedAnswer(call.AnsweringModel.Id, [response.Text], response.FinishReason?.Value, call.InputTokens, call.OutputTokens), cancellationToken);
        }
        return response;
    }

    public override IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? chatOptions = null, CancellationToken cancellationToken = default) =>
        StreamObserver.Start(ct =>
        {
            var call = ChatCall.Of(chatOptions);
            var list = messages as IReadOnlyList<ChatMessage> ?? [.. messages];
            // Neither read nor stored: the provider's stream is handed on as it is, with no work per update here.
            var source = Bypassed(call) ? Bypass(call, list, chatOptions, ct) : StreamAsync(call, list, chatOptions, ct);
            return new(StartedStream.Unread(source.GetAsyncEnumerator(ct)));
        }, cancellationToken: cancellationToken);

    private bool Bypassed(ChatCall call) => options.Mode == ResponseCacheOptions.Off || call.Cache == CacheDirective.NoStore;

    private IAsyncEnumerable<ChatResponseUpdate> Bypass(ChatCall call, IReadOnlyList<ChatMessage> list, ChatOptions? chatOptions, CancellationToken cancellationToken)
    {
        call.DecideCache(CacheStatuses.Bypass);
        return base.GetStreamingResponseAsync(list, chatOptions, cancellationToken);
    }

    private async IAsyncEnumerable<ChatResponseUpdate> StreamAsync(
        ChatCall call, IReadOnlyList<ChatMessage> list, ChatOptions? chatOptions, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var (keys, hit) = await LookupAsync(call, list, chatOptions, cancellationToken);
        if (hit is not null)
        {
            var id = "cached-" + Guid.NewGuid().ToString("N");
            foreach (var chunk in hit.Chunks)
            {
                yield return new ChatResponseUpdate(ChatRole.Assistant, chunk) { ModelId = hit.Model, ResponseId = id };
            }
            yield return new ChatResponseUpdate { Role = ChatRole.Assistant, ModelId = hit.Model, ResponseId = id, FinishReason = Finish(hit.FinishReason) };
            yield break;
        }
        // The answer's text is kept only while it can still be stored: with the cache off (or bypassed,
        // or the answer not plain text) an open stream holds none of it.
        var storable = keys is not null;
        var chunks = storable ? new List<string>() : null;
        ChatFinishReason? finish = null;
        await foreach (var u in base.GetStreamingResponseAsync(list, chatOptions, cancellationToken))
        {
            call.Observe(u);
            storable = storable && IsPlainText(u.Contents);
            if (!storable)
            {
                chunks = null;
            }
            else if (u.Text.Length > 0)
            {
                chunks!.Add(u.Text);
            }
            finish = u.FinishReason ?? finish;
            yield return u;
        }
        if (storable && finish is not null)
        {
            call.Settle(list, failed: false);
            await StoreAsync(keys!, new CachedAnswer(call.AnsweringModel.Id, chunks!, finish.Value.Value, call.InputTokens, call.OutputTokens), cancellationToken);
        }
    }

    private async ValueTask<(CacheKeys? Keys, CachedAnswer? Hit)> LookupAsync(
        ChatCall call, IReadOnlyList<ChatMessage> messages, ChatOptions? chatOptions, CancellationToken cancellationToken)
    {
        if (Bypassed(call))
        {
            call.DecideCache(CacheStatuses.Bypass);
            return (null, null);
        }
        var keys = CacheKeys.For(call, messages, chatOptions, options.GlobalScope);
        if (call.Cache == CacheDirective.NoCache)
        {
            call.DecideCache(CacheStatuses.Bypass);
            return (keys, null);
        }
        var hit = await store.GetAsync<CachedAnswer>(keys.Exact, cancellationToken);
        if (hit is null && options.Mode == ResponseCacheOptions.Semantic && embeddings is not null && keys.Prompt.Length > 0)
        {
            keys.Vector = (await embeddings.GenerateAsync([keys.Prompt], cancellationToken: cancellationToken))[0].Vector.ToArray();
            var index = await store.GetAsync<SemanticIndex>(keys.Scope, cancellationToken);
            var best = index?.Entries
                .Select(e => (e.Key, Similarity: e.Vector.Length == keys.Vector.Length ? TensorPrimitives.CosineSimilarity(e.Vector, keys.Vector) : -1f))
                .Where(e => e.Similarity >= options.SemanticThreshold)
                .OrderByDescending(e => e.Similarity)
                .FirstOrDefault();
            if (best?.Key is { } key)
            {
                hit = await store.GetAsync<CachedAnswer>(key, cancellationToken);
            }
        }
        metrics?.Cache("response", hit is not null);
        call.DecideCache(hit is null ? CacheStatuses.Miss : CacheStatuses.Hit);
        call.TokensSaved = hit is null ? 0 : hit.InputTokens + hit.OutputTokens;
        return (keys, hit);
    }

    private async ValueTask StoreAsync(CacheKeys keys, CachedAnswer answer, CancellationToken cancellationToken)
    {
        await store.SetAsync(keys.Exact, answer, Ttl, cancellationToken);
        if (options.Mode != ResponseCacheOptions.Semantic || embeddings is null || keys.Prompt.Length == 0)
        {
            return;
        }
        keys.Vector ??= (await embeddings.GenerateAsync([keys.Prompt], cancellationToken: cancellationToken))[0].Vector.ToArray();
        // Read-modify-write without a lock: two answers stored at the same moment may drop one index entry,
        // which costs a later miss, never a wrong hit.
        var index = await store.GetAsync<SemanticIndex>(keys.Scope, cancellationToken) ?? new SemanticIndex([]);
        var entries = index.Entries.Where(e => e.Key != keys.Exact).TakeLast(SemanticEntriesPerScope - 1).ToList();
        entries.Add(new SemanticEntry(keys.Vector, keys.Exact));
        await store.SetAsync(keys.Scope, new SemanticIndex(entries), Ttl, cancellationToken);
    }

    private static bool IsPlainText(IEnumerable<AIContent> contents)
    {
        if (contents is not IList<AIContent> list)
        {
            return contents.All(c => c is TextContent or UsageContent);
        }
        // Indexed: asked of every streamed update, and an enumerator of the IList is an allocation.
        for (var i = 0; i < list.Count; i++)
        {
            if (list[i] is not (TextContent or UsageContent))
            {
                return false;
            }
        }
        return true;
    }

    private static ChatFinishReason? Finish(string? value) => value is null ? null : new ChatFinishReason(value);

    /// <summary>The exact key, and for the semantic lookup the scope key (all but the last user message) and that message.</summary>
    private sealed class CacheKeys
    {
        public required string Exact { get; init; }
        public required string Scope { get; init; }
        public required string Prompt { get; init; }
        public float[]? Vector { get; set; }

        public static CacheKeys For(ChatCall call, IReadOnlyList<ChatMessage> messages, ChatOptions? o, bool global)
        {
            var last = messages.Count > 0 && messages[^1].Role == ChatRole.User ? messages[^1] : null;
            using var scope = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            Add(scope, global ? "global" : call.UserId.ToString("N"));
            Add(scope, call.RequestedModel.Id);
            AddOptions(scope, o);
            for (var i = 0; i < messages.Count - (last is null ? 0 : 1); i++)
            {
                AddMessage(scope, messages[i]);
            }
            using var exact = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var scopeHash = scope.GetHashAndReset();
            exact.AppendData(scopeHash);
            if (last is not null)
            {
                AddMessage(exact, last);
            }
            return new CacheKeys
            {
                Exact = "jackcwf:rc:" + Convert.ToHexStringLower(exact.GetHashAndReset()),
                Scope = "jackcwf:rcs:" + Convert.ToHexStringLower(scopeHash),
                Prompt = last?.Text ?? "",
            };
        }

        /// <summary>
        /// Every option that can change an answer. Left out, because they do not: the caller's end-user
        /// id (<see cref="ChatOptions.RawRepresentationFactory"/>, <c>user</c> on /v1: abuse tracking at the
        /// provider; the cache is per user anyway) and the pipeline's own <see cref="ChatCall"/>.
        /// </summary>
        private static void AddOptions(IncrementalHash h, ChatOptions? o)
        {
            var inv = System.Globalization.CultureInfo.InvariantCulture;
            Add(h, string.Join('|',
                o?.Temperature?.ToString("R", inv), o?.TopP?.ToString("R", inv), o?.TopK?.ToString(inv), o?.MaxOutputTokens?.ToString(inv),
                o?.Seed?.ToString(inv), o?.FrequencyPenalty?.ToString("R", inv), o?.PresencePenalty?.ToString("R", inv),
                o?.AllowMultipleToolCalls?.ToString(), o?.Reasoning is { } r ? $"{r.Effort}:{r.Output}" : null,
                o?.ModelId, o?.ConversationId, o?.AllowBackgroundResponses?.ToString()));
            Add(h, o?.Instructions);
            Add(h, o?.StopSequences is { } stop ? string.Join('\u001f', stop) : null);
            Add(h, o?.ToolMode switch
            {
                null => "",
                RequiredChatToolMode required => "required:" + required.RequiredFunctionName,
                var mode => mode.GetType().Name,
            });
            Add(h, o?.ResponseFormat switch
            {
                null => "",
                ChatResponseFormatText => "text",
                ChatResponseFormatJson j => "json:" + j.SchemaName + ":" + j.SchemaDescription + ":" + j.Schema?.GetRawText(),
                var other => other.GetType().Name,
            });
            foreach (var tool in o?.Tools ?? [])
            {
                Add(h, tool.Name);
                Add(h, tool.Description);
                Add(h, tool is AIFunctionDeclaration f ? f.JsonSchema.GetRawText() : tool.GetType().Name);
            }
            // Provider-specific switches the mappers set (strict schema adherence, …), in a stable order.
            foreach (var (key, value) in (o?.AdditionalProperties ?? []).Where(p => p.Key != ChatCall.OptionsKey).OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                Add(h, key);
                Add(h, value is JsonElement e ? e.GetRawText() : Convert.ToString(value, inv));
            }
        }

        private static void AddMessage(IncrementalHash h, ChatMessage m)
        {
            Add(h, m.Role.Value);
            Add(h, m.AuthorName);
            Add(h, JsonSerializer.Serialize(m.Contents, AIJsonUtilities.DefaultOptions.GetTypeInfo(typeof(IList<AIContent>))));
        }

        private static void Add(IncrementalHash h, string? s)
        {
            var bytes = Encoding.UTF8.GetBytes(s ?? "");
            h.AppendData(BitConverter.GetBytes(bytes.Length));
            h.AppendData(bytes);
        }
    }
}
