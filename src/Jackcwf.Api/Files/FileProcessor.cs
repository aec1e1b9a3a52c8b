using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using Jackcwf.Api.Ai.Embeddings;
using Jackcwf.Api.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Files;

/// <summary>
/// Turns uploads into searchable chunks in the background: extract the text, cut it into overlapping
/// chunks, embed them with the default embedding model, store chunks and vectors in the database.
/// The upload's replica is told at once (a channel); files left <c>processing</c> by a restart or a
/// crashed replica are found by a sweep at start and every half claim period. Several replicas never
/// process the same file: each takes it with a conditional UPDATE (a claim that expires unless
/// renewed), and only the claim holder may write the result.
/// </summary>
public sealed class FileProcessor(
    IServiceScopeFactory scopes,
    IEmbeddingGenerator<string, Embedding<float>> embedder,
    EmbeddingModels models,
    SchemaState schema,
    IOptions<FilesOptions> options,
    FileMetrics metrics,
    TimeProvider time,
    ILogger<FileProcessor> logger) : BackgroundService
{
    private const int EmbedBatch = 32;
    private readonly Channel<Guid> _queue = Channel.CreateUnbounded<Guid>(new UnboundedChannelOptions { SingleReader = true });

    /// <summary>Identifies this replica in <see cref="StoredFile.ClaimedBy"/>.</summary>
    public string InstanceId { get; } = $"{Environment.MachineName}:{Environment.ProcessId}:{Guid.NewGuid().ToString("N")[..8]}";

    /// <summary>Process <paramref name="fileId"/> soon (it was claimed for this replica when stored).</summary>
    public void Enqueue(Guid fileId) => _queue.Writer.TryWrite(fileId);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // The sweep and the claims read the files table, which the first migration creates.
        await schema.WhenCurrentAsync(stoppingToken);
        var sweeping = SweepAsync(stoppingToken);
        try
        {
            await foreach (var id in _queue.Reader.ReadAllAsync(stoppingToken))
            {
                await ProcessAsync(id, stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        await sweeping;
    }

    /// <summary>Queues unfinished files whose claim lapsed (or that a stopped replica released).</summary>
    private async Task SweepAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(Math.Max(1, options.Value.ClaimSeconds / 2)));
        try
        {
            // The first sweep waits for the replica's first readiness answer; files stored meanwhile are queued anyway.
            await schema.WhenStartedAsync(ct);
            do
            {
                try
                {
                    await using var scope = scopes.CreateAsyncScope();
                    var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
                    var now = time.UtcNowForStorage();
                    var ids = await db.Set<StoredFile>().AsNoTracking()
                        .Where(f => f.Status == FileStatuses.Processing && (f.ClaimExpiresAt == null || f.ClaimExpiresAt < now))
                        .OrderBy(f => f.CreatedAt).Select(f => f.Id).Take(100).ToListAsync(ct);
                    foreach (var id in ids)
                    {
                        Enqueue(id);
                    }
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    // The database may be starting or failing over; the next tick looks again.
                    logger.LogWarning("Looking for unprocessed files failed: {Error}", ex.GetType().Name);
                }
            }
            while (await timer.WaitForNextTickAsync(ct));
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task ProcessAsync(Guid id, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
            if (!await ClaimAsync(db, id, ct))
            {
                return;
            }
            var file = await db.Set<StoredFile>().AsNoTracking().Where(f => f.Id == id)
                .Select(f => new { f.UserId, f.ContentType, f.Data }).FirstOrDefaultAsync(ct);
            if (file?.Data is null)
            {
                return;
            }
            var o = options.Value;
            string text;
            List<string> chunks;
            try
            {
                // Parsing is CPU work on untrusted input: off the request threads, one file at a time per replica.
                (text, chunks) = await Task.Run(() =>
                {
                    var t = DocumentText.Extract(file.Data, file.ContentType);
                    return (t, DocumentText.Chunk(t, o.ChunkChars, o.ChunkOverlapChars));
                }, ct);
                if (chunks.Count == 0)
                {
                    throw new DocumentException("No text was found in the file (a scanned PDF would need OCR, which is not supported).");
                }
                if (chunks.Count > o.MaxChunksPerFile)
                {
                    throw new DocumentException($"The file holds too much text: {chunks.Count} chunks, at most {o.MaxChunksPerFile} (FILES_MAX_CHUNKS).");
                }
            }
            catch (DocumentException e)
            {
                await FinishAsync(db, id, FileStatuses.Failed, e.Message, null, 0, ct);
                metrics.Processed(FileStatuses.Failed, Stopwatch.GetElapsedTime(started));
                return;
            }

            // Chunks of an attempt a crashed replica left behind are replaced.
            await db.Set<FileChunk>().Where(c => c.FileId == id).ExecuteDeleteAsync(ct);
            for (var i = 0; i < chunks.Count; i += EmbedBatch)
            {
                var batch = chunks.Skip(i).Take(EmbedBatch).ToList();
                var vectors = await embedder.GenerateAsync(batch, cancellationToken: ct);
                db.ChangeTracker.Clear();
                for (var j = 0; j < batch.Count; j++)
                {
                    db.Add(new FileChunk
                    {
                        Id = time.NewId(), FileId = id, UserId = file.UserId, ChunkIndex = i + j, Text = batch[j],
                        Embedding = ToBytes(vectors[j].Vector.Span),
                    });
                }
                await db.SaveChangesAsync(ct);
                if (!await RenewAsync(db, id, ct))
                {
                    // Deleted meanwhile, or the claim lapsed and another replica took over.
                    return;
                }
            }
            await FinishAsync(db, id, FileStatuses.Ready, null, text, chunks.Count, ct);
            metrics.Processed(FileStatuses.Ready, Stopwatch.GetElapsedTime(started));
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            await ReleaseAsync(id);
        }
        catch (Exception ex)
        {
            // The embedding model or the database failed: the file says so; uploading again retries.
            logger.LogWarning("Processing file {FileId} failed: {Error}", id, ex.GetType().Name);
            try
            {
                await using var scope = scopes.CreateAsyncScope();
                var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
                await FinishAsync(db, id, FileStatuses.Failed,
                    ex is Ai.ProviderException ? "The embedding model is unavailable; upload the file again later." : "Processing failed; upload the file again.",
                    null, 0, CancellationToken.None);
                metrics.Processed(FileStatuses.Failed, Stopwatch.GetElapsedTime(started));
            }
            catch (Exception inner)
            {
                logger.LogWarning("Marking file {FileId} failed did not work either: {Error}; its claim lapses and it is tried again", id, inner.GetType().Name);
            }
        }
    }

    private async Task<bool> ClaimAsync(AppDbContext db, Guid id, CancellationToken ct)
    {
        var now = time.UtcNowForStorage();
        var until = now.AddSeconds(options.Value.ClaimSeconds);
        var me = InstanceId;
        return await db.Set<StoredFile>()
            .Where(f => f.Id == id && f.Status == FileStatuses.Processing && (f.ClaimedBy == me || f.ClaimExpiresAt == null || f.ClaimExpiresAt < now))
            .ExecuteUpdateAsync(u => u.SetProperty(f => f.ClaimedBy, me).SetProperty(f => f.ClaimExpiresAt, until), ct) == 1;
    }

    private Task<bool> RenewAsync(AppDbContext db, Guid id, CancellationToken ct) => ClaimAsync(db, id, ct);

    private async Task FinishAsync(AppDbContext db, Guid id, string status, string? error, string? text, int chunkCount, CancellationToken ct)
    {
        var me = InstanceId;
        var model = status == FileStatuses.Ready ? models.DefaultId : null;
        var now = time.UtcNowForStorage();
        await db.Set<StoredFile>()
            .Where(f => f.Id == id && f.ClaimedBy == me && f.Status == FileStatuses.Processing)
            .ExecuteUpdateAsync(u => u
                .SetProperty(f => f.Status, status)
                .SetProperty(f => f.Error, error)
                .SetProperty(f => f.Text, text)
                .SetProperty(f => f.ChunkCount, chunkCount)
                .SetProperty(f => f.EmbeddingModel, model)
                .SetProperty(f => f.ProcessedAt, now)
                .SetProperty(f => f.Data, (byte[]?)null)
                .SetProperty(f => f.ClaimedBy, (string?)null)
                .SetProperty(f => f.ClaimExpiresAt, (DateTime?)null), ct);
        if (status == FileStatuses.Failed)
        {
            await db.Set<FileChunk>().Where(c => c.FileId == id).ExecuteDeleteAsync(ct);
        }
    }

    /// <summary>On shutdown: give the file back so the next replica to start (or sweep) takes it at once.</summary>
    private async Task ReleaseAsync(Guid id)
    {
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
            var me = InstanceId;
            await db.Set<StoredFile>().Where(f => f.Id == id && f.ClaimedBy == me)
                .ExecuteUpdateAsync(u => u.SetProperty(f => f.ClaimedBy, (string?)null).SetProperty(f => f.ClaimExpiresAt, (DateTime?)null));
        }
        catch (Exception ex)
        {
            logger.LogInformation("Releasing file {FileId} at shutdown failed ({Error}); its claim lapses instead", id, ex.GetType().Name);
        }
    }

    // Vectors are stored as float32 in the machine's byte order; every platform .NET runs this service on is little-endian.
    internal static byte[] ToBytes(ReadOnlySpan<float> vector) => MemoryMarshal.AsBytes(vector).ToArray();

    internal static ReadOnlySpan<float> ToVector(byte[] bytes) => MemoryMarshal.Cast<byte, float>(bytes);
}

/// <summary><c>jackcwf_files_processed_total</c>, <c>jackcwf_file_processing_duration_seconds</c>, <c>jackcwf_retrieval_duration_seconds</c> (docs/metrics.md).</summary>
public sealed class FileMetrics
{
    private readonly Counter<long> _processed;
    private readonly Histogram<double> _processing;
    private readonly Histogram<double> _retrieval;

    public FileMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(ServiceDefaults.Extensions.PlatformMeterName);
        _processed = meter.CreateCounter<long>("jackcwf_files_processed", description: "Uploaded files processed, by outcome (ready or failed).");
        _processing = meter.CreateHistogram("jackcwf_file_processing_duration_seconds", unit: "s",
            description: "Time to extract, chunk, embed and store one file, by outcome.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600] });
        _retrieval = meter.CreateHistogram("jackcwf_retrieval_duration_seconds", unit: "s",
            description: "Time to find the chunks of the attached files most similar to a message (embedding the message included).",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] });
    }

    public void Processed(string outcome, TimeSpan elapsed)
    {
        _processed.Add(1, new KeyValuePair<string, object?>("outcome", outcome));
        _processing.Record(elapsed.TotalSeconds, new KeyValuePair<string, object?>("outcome", outcome));
    }

    public void Retrieved(TimeSpan elapsed) => _retrieval.Record(elapsed.TotalSeconds);
}
