using System.Collections.Concurrent;
using System.Linq.Expressions;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.VectorData;
using Microsoft.Extensions.VectorData.ProviderServices;

// The model-building services are how every connector maps a record type; they are marked
// experimental in 10.x, and a store written against them is what the package intends.
#pragma warning disable MEVD9001

namespace Jackcwf.Api.Ai.Embeddings;

/// <summary>
/// A <see cref="VectorStore"/> held in this process's memory, bounded per collection
/// (<c>VECTOR_STORE_MAX_RECORDS</c>; the oldest written record is evicted first), searched
/// exhaustively. It is the store until a packaged vector database is available (pgvector is not
/// packaged for Debian 12); callers see only the Microsoft.Extensions.VectorData abstractions, so
/// a pgvector or Qdrant connector replaces it in <see cref="EmbeddingsExtensions.AddEmbeddings"/>
/// without touching them. Hand-written because no in-memory connector is published for the
/// 10.x abstractions. Not shared between replicas and not durable: callers keep their source
/// data elsewhere and treat what is here as a rebuildable index.
/// </summary>
public sealed class InMemoryVectorStore(IEmbeddingGenerator<string, Embedding<float>> generator, IOptions<EmbeddingOptions> options) : VectorStore
{
    private readonly ConcurrentDictionary<string, object> _collections = new(StringComparer.Ordinal);

    public override VectorStoreCollection<TKey, TRecord> GetCollection<TKey, TRecord>(string name, VectorStoreCollectionDefinition? definition = null)
    {
        var c = _collections.GetOrAdd(name, n => new InMemoryVectorCollection<TKey, TRecord>(n, definition, generator, options.Value.VectorStoreMaxRecordsPerCollection));
        return c as VectorStoreCollection<TKey, TRecord>
            ?? throw new InvalidOperationException($"Vector collection '{name}' already exists with another key or record type.");
    }

    public override VectorStoreCollection<object, Dictionary<string, object?>> GetDynamicCollection(string name, VectorStoreCollectionDefinition definition) =>
        throw new NotSupportedException("The in-memory vector store serves typed collections only.");

    public override async IAsyncEnumerable<string> ListCollectionNamesAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        foreach (var (name, c) in _collections)
        {
            if (await ((IInMemoryCollection)c).ExistsAsync())
            {
                yield return name;
            }
        }
    }

    public override Task<bool> CollectionExistsAsync(string name, CancellationToken cancellationToken = default) =>
        _collections.TryGetValue(name, out var c) ? ((IInMemoryCollection)c).ExistsAsync() : Task.FromResult(false);

    public override Task EnsureCollectionDeletedAsync(string name, CancellationToken cancellationToken = default) =>
        _collections.TryGetValue(name, out var c) ? ((IInMemoryCollection)c).DeleteAsync() : Task.CompletedTask;

    public override object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is null && serviceType.IsInstanceOfType(this) ? this : null;
}

internal interface IInMemoryCollection
{
    Task<bool> ExistsAsync();
    Task DeleteAsync();
}

/// <summary>One bounded collection; records are stored and returned as the same instances.</summary>
public sealed class InMemoryVectorCollection<TKey, TRecord> : VectorStoreCollection<TKey, TRecord>, IInMemoryCollection
    where TKey : notnull
    where TRecord : class
{
    private readonly CollectionModel _model;
    private readonly int _maxRecords;
    private readonly Lock _lock = new();
    // Insertion order for eviction: a record written again moves to the end.
    private readonly LinkedList<TKey> _order = new();
    private readonly Dictionary<TKey, (TRecord Record, Dictionary<string, float[]> Vectors, LinkedListNode<TKey> Node)> _records = new();
    private bool _exists;

    public InMemoryVectorCollection(string name, VectorStoreCollectionDefinition? definition, IEmbeddingGenerator generator, int maxRecords)
    {
        Name = name;
        _maxRecords = maxRecords;
        _model = new ModelBuilder().Build(typeof(TRecord), typeof(TKey), definition, generator);
    }

    public override string Name { get; }

    /// <summary>Records held now (at most the configured bound).</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _records.Count;
            }
        }
    }

    public override Task<bool> CollectionExistsAsync(CancellationToken cancellationToken = default) => ((IInMemoryCollection)this).ExistsAsync();

    Task<bool> IInMemoryCollection.ExistsAsync()
    {
        lock (_lock)
        {
            return Task.FromResult(_exists);
        }
    }

    public override Task EnsureCollectionExistsAsync(CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            _exists = true;
        }
        return Task.CompletedTask;
    }

    public override Task EnsureCollectionDeletedAsync(CancellationToken cancellationToken = default) => ((IInMemoryCollection)this).DeleteAsync();

    Task IInMemoryCollection.DeleteAsync()
    {
        lock (_lock)
        {
            _records.Clear();
            _order.Clear();
            _exists = false;
        }
        return Task.CompletedTask;
    }

    public override Task<TRecord?> GetAsync(TKey key, RecordRetrievalOptions? options = null, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            return Task.FromResult(_records.TryGetValue(key, out var e) ? e.Record : null);
        }
    }

    public override async IAsyncEnumerable<TRecord> GetAsync(
        Expression<Func<TRecord, bool>> filter, int top, FilteredRecordRetrievalOptions<TRecord>? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(top, 1);
        if (options?.OrderBy is not null)
        {
            throw new NotSupportedException("The in-memory vector store does not order filtered reads.");
        }
        var match = filter.Compile();
        foreach (var r in Snapshot().Where(e => match(e.Record)).Skip(options?.Skip ?? 0).Take(top))
        {
            yield return r.Record;
        }
        await Task.CompletedTask;
    }

    public override Task DeleteAsync(TKey key, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            if (_records.Remove(key, out var e))
            {
                _order.Remove(e.Node);
            }
        }
        return Task.CompletedTask;
    }

    public override Task UpsertAsync(TRecord record, CancellationToken cancellationToken = default) => UpsertAsync([record], cancellationToken);

    public override async Task UpsertAsync(IEnumerable<TRecord> records, CancellationToken cancellationToken = default)
    {
        var list = records.ToList();
        var vectors = list.Select(_ => new Dictionary<string, float[]>(StringComparer.Ordinal)).ToList();
        foreach (var property in _model.VectorProperties)
        {
            var values = list.Select(property.GetValueAsObject).ToList();
            if (property.EmbeddingGenerator is not null && values.Any(v => v is not null && AsVector(v) is null))
            {
                var generated = await property.GenerateEmbeddingsAsync(values.Where(v => v is not null)!, cancellationToken);
                var g = 0;
                for (var i = 0; i < values.Count; i++)
                {
                    if (values[i] is not null)
                    {
                        values[i] = generated[g++];
                    }
                }
            }
            for (var i = 0; i < list.Count; i++)
            {
                if (values[i] is { } v)
                {
                    vectors[i][property.ModelName] = AsVector(v) ?? throw new NotSupportedException($"Vector property {property.ModelName} has an unsupported type {v.GetType().Name}.");
                }
            }
        }
        lock (_lock)
        {
            _exists = true;
            for (var i = 0; i < list.Count; i++)
            {
                var key = (TKey)_model.KeyProperty.GetValueAsObject(list[i])!;
                if (_records.Remove(key, out var old))
                {
                    _order.Remove(old.Node);
                }
                _records[key] = (list[i], vectors[i], _order.AddLast(key));
                while (_records.Count > _maxRecords && _order.First is { } oldest)
                {
                    _records.Remove(oldest.Value);
                    _order.RemoveFirst();
                }
            }
        }
    }

    public override async IAsyncEnumerable<VectorSearchResult<TRecord>> SearchAsync<TInput>(
        TInput searchValue, int top, VectorSearchOptions<TRecord>? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(top, 1);
        options ??= new();
        var property = _model.GetVectorPropertyOrSingle(options);
        var query = AsVector(searchValue!) ?? (property.EmbeddingGenerator is not null
            ? AsVector(await property.GenerateEmbeddingAsync(searchValue!, cancellationToken))
            : null) ?? throw new NotSupportedException($"Cannot search with a {typeof(TInput).Name} without an embedding generator.");
        var filter = options.Filter?.Compile();
        var distance = property.DistanceFunction ?? DistanceFunction.CosineSimilarity;
        var higherIsCloser = distance is DistanceFunction.CosineSimilarity or DistanceFunction.DotProductSimilarity;
        var scored = new List<(TRecord Record, double Score)>();
        foreach (var e in Snapshot())
        {
            if ((filter is null || filter(e.Record)) && e.Vectors.TryGetValue(property.ModelName, out var v) && v.Length == query.Length)
            {
                double score = distance switch
                {
                    DistanceFunction.CosineSimilarity => TensorPrimitives.CosineSimilarity(query, v),
                    DistanceFunction.CosineDistance => 1 - TensorPrimitives.CosineSimilarity(query, v),
                    DistanceFunction.DotProductSimilarity => TensorPrimitives.Dot(query, v),
                    DistanceFunction.EuclideanDistance => TensorPrimitives.Distance(query, v),
                    _ => throw new NotSupportedException($"Distance function {distance} is not supported by the in-memory vector store."),
                };
                if (options.ScoreThreshold is not { } t || (higherIsCloser ? score >= t : score <= t))
                {
                    scored.Add((e.Record, score));
                }
            }
        }
        var ordered = higherIsCloser ? scored.OrderByDescending(s => s.Score) : scored.OrderBy(s => s.Score);
        foreach (var (record, score) in ordered.Skip(options.Skip).Take(top))
        {
            yield return new VectorSearchResult<TRecord>(record, score);
        }
    }

    public override object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is null && serviceType.IsInstanceOfType(this) ? this : null;

    private List<(TRecord Record, Dictionary<string, float[]> Vectors)> Snapshot()
    {
        lock (_lock)
        {
            return _records.Values.Select(e => (e.Record, e.Vectors)).ToList();
        }
    }

    private static float[]? AsVector(object value) => value switch
    {
        ReadOnlyMemory<float> m => m.ToArray(),
        float[] a => (float[])a.Clone(),
        Embedding<float> e => e.Vector.ToArray(),
        _ => null,
    };

    private sealed class ModelBuilder() : CollectionModelBuilder(new CollectionModelBuildingOptions
    {
        SupportsMultipleVectors = true,
        RequiresAtLeastOneVector = false,
    })
    {
        protected override void ValidateKeyProperty(KeyPropertyModel keyProperty)
        {
            base.ValidateKeyProperty(keyProperty);
            var t = keyProperty.Type;
            if (t != typeof(string) && t != typeof(Guid) && t != typeof(int) && t != typeof(long))
            {
                throw new NotSupportedException($"Key property {keyProperty.ModelName} must be a string, Guid, int or long.");
            }
        }

        protected override bool IsDataPropertyTypeValid(Type type, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? supportedTypes)
        {
            supportedTypes = "any";
            return true;
        }

        protected override bool IsVectorPropertyTypeValid(Type type, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? supportedTypes)
        {
            supportedTypes = "ReadOnlyMemory<float>, float[], Embedding<float>";
            return type == typeof(ReadOnlyMemory<float>) || type == typeof(ReadOnlyMemory<float>?) || type == typeof(float[]) || type == typeof(Embedding<float>);
        }
    }
}
