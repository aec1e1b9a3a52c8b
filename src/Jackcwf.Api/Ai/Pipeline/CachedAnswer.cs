using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Caching.Hybrid;

namespace Jackcwf.Api.Ai.Pipeline;

/// <summary>A stored answer: its text as it was streamed (chunk by chunk), so a hit streams the same way.</summary>
public sealed record CachedAnswer(string Model, List<string> Chunks, string? FinishReason, long InputTokens, long OutputTokens);

/// <summary>Earlier prompts of one scope (user, model, parameters, conversation so far) with their embeddings.</summary>
public sealed record SemanticIndex(List<SemanticEntry> Entries);

public sealed record SemanticEntry(float[] Vector, string Key);

[JsonSerializable(typeof(CachedAnswer))]
[JsonSerializable(typeof(SemanticIndex))]
internal sealed partial class ResponseCacheJsonContext : JsonSerializerContext;
