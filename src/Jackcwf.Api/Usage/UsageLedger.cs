using System.Threading.Channels;
using Jackcwf.Api.Data;
using Jackcwf.Api.Limits;
using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Usage;

/// <summary>Where the pipeline's accounting writes each call's usage.</summary>
public interface IUsageRecorder
{
    Task RecordAsync(Guid userId, Guid? apiKeyId, string model, string source, long inputTokens, long outputTokens, decimal costUsd,
        bool cached = false, long tokensSaved = 0);
}

/// <summary>How the usage ledger batches its writes (appsettings <c>Usage</c> section).</summary>
public sealed class UsageLedgerOptions
{
    public const string Section = "Usage";

    /// <summary>Rows recorded since the last write are written at least this often; also what a crash (kill -9) can lose.</summary>
    public int FlushIntervalMs { get; set; } = 1000;

    /// <summary>A batch is written as soon as this many rows wait, and no insert carries more.</summary>
    public int FlushBatchRows { get; set; } = 500;

    /// <summary>Rows that may wait in memory; past it, callers wait for a write (the database is down or slow): nothing is dropped.</summary>
    public int MaxPendingRows { get; set; } = 50_000;
}

/// <summary>
/// The usage ledger: one line per generation (never per token), kept off the request path. A call
/// records into a bounded in-memory queue; a background writer inserts the queued rows in one
/// statement (binary <c>COPY</c> on PostgreSQL, a multi-row <c>INSERT</c> on SQLite and for a retried batch) every <see cref="UsageLedgerOptions.FlushIntervalMs"/> or as soon as
/// <see cref="UsageLedgerOptions.FlushBatchRows"/> wait. Graceful shutdown writes everything
/// (this service stops after the generations have drained); a crash loses at most the rows recorded
/// since the last write. Readers of the ledger on this replica (usage report, export, account
/// deletion, the budget's seed) call <see cref="FlushAsync"/> first, so they see their own calls at once.
/// </summary>
/// <remarks>
/// The budget never depends on this writer: the month-to-date spend is reserved and settled
/// atomically in the limit store (<see cref="LimitGuard.ReserveSpendAsync"/>) on the request path,
/// and the ledger only seeds it when the store has no value for the month.
/// Written with <see cref="BatchCommands"/>: EF Core's <c>SaveChanges</c> sends one <c>INSERT</c> statement per row.
/// </remarks>
public sealed class UsageLedger(IServiceScopeFactory scopes, IOptions<UsageLedgerOptions> options, TimeProvider time, ILogger<UsageLedger> logger)
    : IUsageRecorder, IHostedService
{
    public const string Chat = "chat";
    public const string Gateway = "gateway";

    // The columns written, by property; a column added later without a value here takes its database default.
    private static readonly (string Property, Func<UsageRecord, object?> Value)[] Columns =
    [
        (nameof(UsageRecord.Id), r => r.Id),
        (nameof(UsageRecord.UserId), r => r.UserId),
        (nameof(UsageRecord.ApiKeyId), r => r.ApiKeyId),
        (nameof(UsageRecord.Model), r => r.Model),
        (nameof(UsageRecord.Source), r => r.Source),
        (nameof(UsageRecord.InputTokens), r => r.InputTokens),
        (nameof(UsageRecord.OutputTokens), r => r.OutputTokens),
        (nameof(UsageRecord.CostUsd), r => r.CostUsd),
        (nameof(UsageRecord.CreatedAt), r => r.CreatedAt),
        (nameof(UsageRecord.Cached), r => r.Cached),
        (nameof(UsageRecord.TokensSaved), r => r.TokensSaved),
    ];

    private readonly Channel<UsageRecord> _queue = Channel.CreateBounded<UsageRecord>(
        new BoundedChannelOptions(Math.Max(1, options.Value.MaxPendingRows)) { FullMode = BoundedChannelFullMode.Wait });
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly SemaphoreSlim _writing = new(1, 1);
    private readonly CancellationTokenSource _stopping = new();
    private List<UsageRecord> _unwritten = [];
    private Task? _loop;
    private volatile bool _stopped;

    /// <summary>Rows recorded but not yet in the database (queued or in a write under way).</summary>
    public int Pending => _queue.Reader.Count + Volatile.Read(ref _unwritten).Count;

    public Task RecordAsync(Guid userId, Guid? apiKeyId, string model, string source, long inputTokens, long outputTokens, decimal costUsd,
        bool cached = false, long tokensSaved = 0)
    {
        var row = new UsageRecord
        {
            Id = time.NewId(), UserId = userId, ApiKeyId = apiKeyId, Model = model, Source = source,
            InputTokens = (int)inputTokens, OutputTokens = (int)outputTokens, CostUsd = costUsd, CreatedAt = time.UtcNowForStorage(),
            Cached = cached, TokensSaved = (int)tokensSaved,
        };
        if (!_queue.Writer.TryWrite(row))
        {
            return EnqueueSlowAsync(row);
        }
        if (_stopped)
        {
            // Recorded after (or during) the final flush, by a late call during shutdown: written now, not left in memory.
            return FlushAsync(CancellationToken.None);
        }
        if (_queue.Reader.Count >= options.Value.FlushBatchRows)
        {
            _wake.Writer.TryWrite(true);
        }
        return Task.CompletedTask;
    }

    private async Task EnqueueSlowAsync(UsageRecord row)
    {
        _wake.Writer.TryWrite(true);
        await _queue.Writer.WriteAsync(row);
        if (_stopped)
        {
            await FlushAsync(CancellationToken.None);
        }
    }

    /// <summary>Writes every row recorded on this replica before the call; returns at once when none waits.</summary>
    public async Task FlushAsync(CancellationToken ct)
    {
        if (Pending == 0)
        {
            return;
        }
        await _writing.WaitAsync(ct);
        try
        {
            await WriteQueuedAsync(ct);
        }
        finally
        {
            _writing.Release();
        }
    }

    // Under _writing: drains the queue in batches; a failed batch stays in _unwritten and is retried first.
    private async Task WriteQueuedAsync(CancellationToken ct)
    {
        var max = Math.Clamp(options.Value.FlushBatchRows, 1, BatchCommands.MaxRows);
        while (true)
        {
            var batch = _unwritten;
            // Rows left from a failed write may already be in the database (the commit's answer was lost).
            var retry = batch.Count > 0;
            while (batch.Count < max && _queue.Reader.TryRead(out var row))
            {
                batch.Add(row);
            }
            if (batch.Count == 0)
            {
                return;
            }
            Volatile.Write(ref _unwritten, batch);
            await InsertAsync(batch, retry, ct);
            Volatile.Write(ref _unwritten, []);
        }
    }

    // A first attempt copies the rows (binary COPY on PostgreSQL); a retry inserts them skipping those already written.
    private async Task InsertAsync(List<UsageRecord> rows, bool retry, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        await (retry ? BatchCommands.InsertAsync(db, rows, Columns, ct) : BatchCommands.CopyAsync(db, rows, Columns, ct));
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _loop = Task.Run(() => RunAsync(_stopping.Token), CancellationToken.None);
        return Task.CompletedTask;
    }

    private async Task RunAsync(CancellationToken stopping)
    {
        var interval = TimeSpan.FromMilliseconds(Math.Max(1, options.Value.FlushIntervalMs));
        var failures = 0;
        Task<bool>? wake = null;
        while (!stopping.IsCancellationRequested)
        {
            wake ??= _wake.Reader.WaitToReadAsync(stopping).AsTask();
            var delay = failures == 0 ? interval : TimeSpan.FromMilliseconds(Math.Min(5000, 200 * failures));
            await Task.WhenAny(wake, Task.Delay(delay, stopping));
            if (wake.IsCompleted)
            {
                _wake.Reader.TryRead(out _);
                wake = null;
            }
            if (stopping.IsCancellationRequested)
            {
                return;
            }
            try
            {
                await FlushAsync(stopping);
                failures = 0;
            }
            catch (Exception ex) when (!stopping.IsCancellationRequested)
            {
                failures++;
                logger.LogWarning("Writing {Rows} usage row(s) failed (attempt {Attempt}); kept in memory and retried: {Error}",
                    Pending, failures, ex.GetType().Name);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Writes everything still queued before the process goes (retried until the host's shutdown timeout).</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _stopped = true;
        await _stopping.CancelAsync();
        if (_loop is not null)
        {
            await _loop;
        }
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await FlushAsync(cancellationToken);
                return;
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
            {
                logger.LogWarning("Writing {Rows} usage row(s) at shutdown failed (attempt {Attempt}): {Error}", Pending, attempt, ex.GetType().Name);
                try
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(2000, 100 * attempt)), cancellationToken);
                }
                catch (OperationCanceledException)
                {
                }
            }
            catch (Exception ex)
            {
                logger.LogError("{Rows} usage row(s) could not be written before shutdown: {Error}", Pending, ex.GetType().Name);
                return;
            }
        }
    }
}
