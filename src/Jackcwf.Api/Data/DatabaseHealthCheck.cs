using System.Data.Common;
using System.Diagnostics;
using Jackcwf.Api.Health;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Jackcwf.Api.Data;

/// <summary>
/// Readiness: unready until the schema is current; after that a database that does not answer makes the
/// replica <c>degraded</c> (still 200), not unready. The database is shared, so when it is away (a primary
/// failover) it is away for every replica at once: taking them all out of the load balancer would turn a
/// failover that requests ride out (they retry and wait for the new primary) into refused requests, and
/// would cut streams that Redis still serves. See "Readiness during a database failover" in the HA guide.
/// </summary>
internal sealed class DatabaseHealthCheck(AppDbContext db, SchemaState schema, IOptions<MonitoringOptions> options) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (!schema.IsCurrent)
        {
            return HealthCheckResult.Unhealthy("schema not current yet");
        }
        schema.MarkReadinessAnswered();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(options.Value.HealthCheckTimeoutMs);
        try
        {
            return await db.Database.CanConnectAsync(cts.Token)
                ? HealthCheckResult.Healthy()
                : HealthCheckResult.Degraded("database unreachable");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return HealthCheckResult.Degraded($"database did not answer within {options.Value.HealthCheckTimeoutMs} ms");
        }
        catch (Exception ex) when (ex is DbException or InvalidOperationException or NpgsqlException)
        {
            return HealthCheckResult.Degraded("database unreachable");
        }
    }
}
