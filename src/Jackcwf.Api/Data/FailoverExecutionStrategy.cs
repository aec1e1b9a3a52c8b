using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Npgsql;
using Npgsql.EntityFrameworkCore.PostgreSQL;

namespace Jackcwf.Api.Data;

/// <summary>
/// EF Core's retrying strategy for PostgreSQL, widened to ride out a primary failover: every query
/// and <c>SaveChanges</c> is retried (as one unit, with its own transaction) while the cluster has no
/// primary, and the pool is cleared once the old primary's connections are found dead, so none stays
/// behind to fail a later request. Retries wait 0, 1, then 3 s each: about 25 s in all, longer than a
/// Patroni failover after a crash and far longer than a planned switchover.
/// </summary>
/// <remarks>
/// Retrying is safe for our writes: <c>SaveChanges</c> inserts rows with ids chosen before the first
/// attempt (a commit that reached the server before the connection broke makes the retry fail on the
/// primary key, and message creation then answers from its Idempotency-Key), and the
/// <c>ExecuteUpdate</c>s set absolute values. Code that opens a transaction itself must run it inside
/// the strategy's <c>ExecuteAsync(…)</c> (<c>Database.CreateExecutionStrategy()</c>, or the context's own, as
/// <see cref="Chat.ChatTurns"/> does: a new one seeds a <see cref="Random"/> from the kernel); EF refuses it otherwise.
/// </remarks>
internal sealed class FailoverExecutionStrategy(ExecutionStrategyDependencies dependencies)
    : NpgsqlRetryingExecutionStrategy(dependencies, MaxRetries, MaxDelay, errorCodesToAdd: null)
{
    public const int MaxRetries = 10;

    public static readonly TimeSpan MaxDelay = TimeSpan.FromSeconds(3);

    private static long _lastPoolClear;

    protected override bool ShouldRetryOn(Exception? exception) => base.ShouldRetryOn(exception) || IsConnectionLoss(exception);

    protected override void OnRetry()
    {
        if (ExceptionsEncountered.Count > 0 && IsConnectionLoss(ExceptionsEncountered[^1])
            && Dependencies.CurrentContext.Context.Database.GetDbConnection() is NpgsqlConnection connection)
        {
            // One clear per second at most: the first request to see the old primary gone drops every idle
            // connection to it, busy ones are discarded when returned.
            var now = Environment.TickCount64;
            var last = Interlocked.Read(ref _lastPoolClear);
            if (now - last > 1000 && Interlocked.CompareExchange(ref _lastPoolClear, now, last) == last)
            {
                NpgsqlConnection.ClearPool(connection);
            }
        }
        base.OnRetry();
    }

    /// <summary>
    /// The server went away or cannot serve writes yet: Npgsql lost the socket or found no primary, or the
    /// server said it is shutting down / starting (57P01-57P03), lost the connection (class 08), or is a
    /// standby now (25006, a write that did nothing). Answers from a healthy server (constraint violations,
    /// syntax) are never retried.
    /// </summary>
    internal static bool IsConnectionLoss(Exception? exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                case PostgresException pg:
                    return pg.SqlState.StartsWith("08", StringComparison.Ordinal)
                        || pg.SqlState is PostgresErrorCodes.AdminShutdown or PostgresErrorCodes.CrashShutdown
                            or PostgresErrorCodes.CannotConnectNow or PostgresErrorCodes.ReadOnlySqlTransaction;
                case NpgsqlException:
                    return true;
            }
        }
        return false;
    }
}
