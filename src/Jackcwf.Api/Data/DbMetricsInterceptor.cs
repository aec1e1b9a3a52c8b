using System.Data.Common;
using System.Diagnostics;
using Jackcwf.Api.Telemetry;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;

namespace Jackcwf.Api.Data;

/// <summary>Times every database command for <c>jackcwf_db_query_duration_seconds</c>.</summary>
internal sealed class DbMetricsInterceptor(JackcwfMetrics metrics, DatabaseConnection connection) : DbCommandInterceptor
{
    private readonly string _provider = connection.Provider == DatabaseProvider.PostgreSql ? "postgresql" : "sqlite";

    public override DbDataReader ReaderExecuted(DbCommand command, CommandExecutedEventData eventData, DbDataReader result)
    {
        Record(command, eventData.Duration);
        return result;
    }

    public override ValueTask<DbDataReader> ReaderExecutedAsync(DbCommand command, CommandExecutedEventData eventData, DbDataReader result, CancellationToken cancellationToken = default)
    {
        Record(command, eventData.Duration);
        return ValueTask.FromResult(result);
    }

    public override int NonQueryExecuted(DbCommand command, CommandExecutedEventData eventData, int result)
    {
        Record(command, eventData.Duration);
        return result;
    }

    public override ValueTask<int> NonQueryExecutedAsync(DbCommand command, CommandExecutedEventData eventData, int result, CancellationToken cancellationToken = default)
    {
        Record(command, eventData.Duration);
        return ValueTask.FromResult(result);
    }

    public override object? ScalarExecuted(DbCommand command, CommandExecutedEventData eventData, object? result)
    {
        Record(command, eventData.Duration);
        return result;
    }

    public override ValueTask<object?> ScalarExecutedAsync(DbCommand command, CommandExecutedEventData eventData, object? result, CancellationToken cancellationToken = default)
    {
        Record(command, eventData.Duration);
        return ValueTask.FromResult(result);
    }

    private void Record(DbCommand command, TimeSpan duration) =>
        metrics.DbCommand(_provider, Operation(command.CommandText), duration.TotalSeconds);

    private static string Operation(string sql)
    {
        var s = sql.AsSpan().TrimStart();
        // EF prefixes some statements with a comment or a PRAGMA/SET; the verb is what matters.
        return s.Length < 6 ? "other"
            : s.StartsWith("SELECT", StringComparison.OrdinalIgnoreCase) ? "select"
            : s.StartsWith("INSERT", StringComparison.OrdinalIgnoreCase) ? "insert"
            : s.StartsWith("UPDATE", StringComparison.OrdinalIgnoreCase) ? "update"
            : s.StartsWith("DELETE", StringComparison.OrdinalIgnoreCase) ? "delete"
            : "other";
    }
}
