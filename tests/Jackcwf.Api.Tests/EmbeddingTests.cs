using System.ClientModel;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Numerics.Tensors;
using System.Text.Json;
using Jackcwf.Api.Ai.Embeddings;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.VectorData;
using OpenAI;

namespace Jackcwf.Api.Tests;

/// <summary>The local model, loaded once for the whole test process (about 2 s).</summary>
public sealed class LocalModelFixture : IDisposable
{
    public LocalEmbeddingGenerator Generator { get; } = new();

    public void Dispose() => Generator.Dispose();
}

/// <summary>The packaged all-MiniLM-L6-v2 model and the in-memory vector store, in process.</summary>
public sealed class LocalEmbeddingTests(LocalModelFixture model) : IClassFixture<LocalModelFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task TheLocalModelGivesFixedSizeDeterministicVectorsThatPlaceParaphrasesCloser()
    {
        var e = await model.Generator.GenerateAsync(
            ["How do I reset my password?", "I forgot my password, how can I change it?", "The weather in Paris is sunny today.", "How do I reset my password?"],
            cancellationToken: Ct);
        Assert.All(e, v => Assert.Equal(LocalEmbeddingGenerator.Dimensions, v.Vector.Length));
        Assert.Equal(e[0].Vector.ToArray(), e[3].Vector.ToArray());
        var paraphrase = TensorPrimitives.CosineSimilarity(e[0].Vector.Span, e[1].Vector.Span);
        var unrelated = TensorPrimitives.CosineSimilarity(e[0].Vector.Span, e[2].Vector.Span);
        Assert.True(paraphrase > 0.7f, $"paraphrase similarity {paraphrase}");
        Assert.True(unrelated < 0.3f, $"unrelated similarity {unrelated}");
        Assert.True(e.Usage?.InputTokenCount > 0);
    }

    [Fact]
    public async Task TheLocalModelRefusesAnotherDimensionCount()
    {
        await Assert.ThrowsAsync<NotSupportedException>(() =>
            model.Generator.GenerateAsync(["x"], new EmbeddingGenerationOptions { Dimensions = 1536 }, Ct));
    }

    [Fact]
    public async Task TheVectorStoreEmbedsTextFindsTheNearestAndFilters()
    {
        var store = new InMemoryVectorStore(model.Generator, Options.Create(new EmbeddingOptions()));
        var docs = store.GetCollection<string, Doc>("docs");
        await docs.EnsureCollectionExistsAsync(Ct);
        await docs.UpsertAsync(
        [
            new Doc { Id = "a", Owner = "alice", Text = "To reset a password, open Settings and choose Security." },
            new Doc { Id = "b", Owner = "alice", Text = "Our office is closed on public holidays." },
            new Doc { Id = "c", Owner = "bob", Text = "Changing your password: Settings, then Security, then Reset." },
        ], Ct);

        var hits = await docs.SearchAsync("how can I change my password", 2, cancellationToken: Ct).ToListAsync(Ct);
        Assert.Equal(["a", "c"], hits.Select(h => h.Record.Id).Order());
        Assert.True(hits[0].Score >= hits[1].Score);

        var alice = await docs.SearchAsync("how can I change my password", 5, new VectorSearchOptions<Doc> { Filter = d => d.Owner == "alice" }, Ct).ToListAsync(Ct);
        Assert.Equal("a", alice[0].Record.Id);
        Assert.DoesNotContain(alice, h => h.Record.Owner == "bob");

        await docs.DeleteAsync("a", Ct);
        Assert.Null(await docs.GetAsync("a", cancellationToken: Ct));
        Assert.Equal("c", (await docs.SearchAsync("reset password", 1, cancellationToken: Ct).SingleAsync(Ct)).Record.Id);
        Assert.True(await store.CollectionExistsAsync("docs", Ct));
        await store.EnsureCollectionDeletedAsync("docs", Ct);
        Assert.False(await store.CollectionExistsAsync("docs", Ct));
    }

    [Fact]
    public async Task TheVectorStoreKeepsAtMostItsBoundEvictingTheOldestWritten()
    {
        var store = new InMemoryVectorStore(model.Generator, Options.Create(new EmbeddingOptions { VectorStoreMaxRecordsPerCollection = 3 }));
        var c = (InMemoryVectorCollection<int, Point>)store.GetCollection<int, Point>("points");
        for (var i = 1; i <= 5; i++)
        {
            await c.UpsertAsync(new Point { Id = i, Vector = new float[] { i, 1 } }, Ct);
        }
        Assert.Equal(3, c.Count);
        Assert.Null(await c.GetAsync(1, cancellationToken: Ct));
        Assert.Null(await c.GetAsync(2, cancellationToken: Ct));
        Assert.NotNull(await c.GetAsync(3, cancellationToken: Ct));
        var nearest = await c.SearchAsync(new ReadOnlyMemory<float>([5, 1]), 1, cancellationToken: Ct).SingleAsync(Ct);
        Assert.Equal(5, nearest.Record.Id);
    }

    public sealed class Doc
    {
        [VectorStoreKey]
        public string Id { get; set; } = "";

        [VectorStoreData]
        public string Owner { get; set; } = "";

        [VectorStoreData]
        public string Text { get; set; } = "";

        // A string vector property: the store embeds it with the generator it was given.
        [VectorStoreVector(LocalEmbeddingGenerator.Dimensions)]
        public string Embedding => Text;
    }

    public sealed class Point
    {
        [VectorStoreKey]
        public int Id { get; set; }

        [VectorStoreVector(2, DistanceFunction = DistanceFunction.EuclideanDistance)]
        public ReadOnlyMemory<float> Vector { get; set; }
    }
}

/// <summary><c>POST /v1/embeddings</c> and <c>GET /v1/models/{id}</c> through the official OpenAI SDK.</summary>
public sealed class EmbeddingsGatewayTests(SqliteServiceFixture fx) : IClassFixture<SqliteServiceFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<(OpenAIClient Sdk, HttpClient Http)> ClientsAsync()
    {
        var u = await fx.CreateUserAsync();
        var r = await u.Http.PostAsJsonAsync("api/keys", new { name = "embeddings" }, Ct);
        var key = (await r.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("key").GetString()!;
        var http = fx.Api.CreateClient();
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return (new OpenAIClient(new ApiKeyCredential(key), new OpenAIClientOptions { Endpoint = new Uri(fx.Api.BaseUrl, "v1") }), http);
    }

    [Fact]
    public async Task TheDefaultModelIsTheLocalOneAndAnswersInOpenAisShape()
    {
        var (sdk, http) = await ClientsAsync();
        // The SDK asks for base64; the vectors it decodes must be the model's.
        var result = (await sdk.GetEmbeddingClient("default").GenerateEmbeddingsAsync(
            ["How do I reset my password?", "I forgot my password, how can I change it?", "The weather in Paris is sunny today."], cancellationToken: Ct)).Value;
        Assert.Equal(LocalEmbeddingGenerator.ModelId, result.Model);
        Assert.Equal(3, result.Count);
        Assert.All(result, e => Assert.Equal(LocalEmbeddingGenerator.Dimensions, e.ToFloats().Length));
        Assert.True(result.Usage.InputTokenCount > 0);
        var v = result.Select(e => e.ToFloats().ToArray()).ToList();
        Assert.True(TensorPrimitives.CosineSimilarity(v[0], v[1]) > TensorPrimitives.CosineSimilarity(v[0], v[2]));

        // Floats on request, same vector for the same text whichever encoding carried it.
        var r = await http.PostAsJsonAsync("v1/embeddings", new { model = LocalEmbeddingGenerator.ModelId, input = "How do I reset my password?", encoding_format = "float" }, Ct);
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        var body = await r.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal("list", body.GetProperty("object").GetString());
        var item = body.GetProperty("data")[0];
        Assert.Equal("embedding", item.GetProperty("object").GetString());
        Assert.Equal(0, item.GetProperty("index").GetInt32());
        var floats = item.GetProperty("embedding").EnumerateArray().Select(x => x.GetSingle()).ToArray();
        Assert.Equal(v[0], floats);
        Assert.Equal(body.GetProperty("usage").GetProperty("prompt_tokens").GetInt32(), body.GetProperty("usage").GetProperty("total_tokens").GetInt32());
    }

    [Theory]
    [InlineData("""{"model":"default","input":"x","temperature":1}""", 400, "temperature")]
    [InlineData("""{"model":"default","input":"x","dimensions":1536}""", 400, "dimensions")]
    [InlineData("""{"model":"default","input":"x","encoding_format":"int8"}""", 400, "encoding_format")]
    [InlineData("""{"model":"default","input":[1,2,3]}""", 400, "input")]
    [InlineData("""{"model":"default","input":[]}""", 400, "input")]
    [InlineData("""{"model":"default","input":""}""", 400, "input")]
    [InlineData("""{"model":"default"}""", 400, "input")]
    [InlineData("""{"model":"openai/gpt-4o-mini","input":"x"}""", 404, "model")]
    [InlineData("""{"input":"x"}""", 404, "model")]
    public async Task BadEmbeddingRequestsGetOpenAisErrorNamingTheField(string json, int status, string param)
    {
        var (_, http) = await ClientsAsync();
        var r = await http.PostAsync("v1/embeddings", new StringContent(json, System.Text.Encoding.UTF8, "application/json"), Ct);
        Assert.Equal(status, (int)r.StatusCode);
        var error = (await r.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("error");
        Assert.Equal(param, error.GetProperty("param").GetString());
        Assert.Contains(param == "model" ? "model" : param, error.GetProperty("message").GetString()!, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task ModelsAreFoundByIdAndUnknownOnesAre404()
    {
        var (sdk, http) = await ClientsAsync();
        var models = sdk.GetOpenAIModelClient();
        Assert.Equal("openai/gpt-4o-mini", (await models.GetModelAsync("openai/gpt-4o-mini", Ct)).Value.Id);
        Assert.Equal(LocalEmbeddingGenerator.ModelId, (await models.GetModelAsync(LocalEmbeddingGenerator.ModelId, Ct)).Value.Id);
        Assert.Equal("local", (await models.GetModelAsync(LocalEmbeddingGenerator.ModelId, Ct)).Value.OwnedBy);
        var missing = await Assert.ThrowsAsync<ClientResultException>(() => models.GetModelAsync("no/such-model", Ct));
        Assert.Equal(404, missing.Status);
        var r = await http.GetAsync("v1/models/" + Uri.EscapeDataString("no/such-model"), Ct);
        Assert.Equal("model_not_found", (await r.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("error").GetProperty("code").GetString());
        Assert.Contains((await models.GetModelsAsync(Ct)).Value, m => m.Id == LocalEmbeddingGenerator.ModelId);
    }
}
