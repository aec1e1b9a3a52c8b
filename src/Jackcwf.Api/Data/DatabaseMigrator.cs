using System.Data.Common;
using System.Diagnostics;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Jackcwf.Api.Data;

/// <summary>
/// Migrates at start-up (or, with MIGRATE_ON_STARTUP=false, waits for the migrate Job) without
/// blocking the listener: <c>/health/live</c> answers at once, <c>/health/ready</c> once the schema is current.
/// </summary>
internal sealed class DatabaseMigrator(
    IServiceScopeFactory scopes, SchemaState state, IOptions<DatabaseOptions> options, ILogger<DatabaseMigrator> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var attempt = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var scope = scopes.CreateAsyncScope();
                var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
                if (options.Value.MigrateOnStartup)
                {
                    await DataExtensions.MigrateAsync(db, logger, stoppingToken);
                    state.MarkCurrent();
                    return;
                }
                if (await DataExtensions.IsSchemaCurrentAsync(db, stoppingToken))
                {
                    logger.LogInformation("Database schema is current");
                    state.MarkCurrent();
                    return;
                }
                if (attempt++ % 15 == 0)
                {
                    logger.LogWarning("Waiting for the schema to be migrated (MIGRATE_ON_STARTUP=false): run `Jackcwf.Api migrate`");
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                if (attempt++ % 5 == 0)
                {
                    logger.LogWarning("Database not reachable yet ({Error}); retrying", ex.GetType().Name);
                }
            }
            await Task.Delay(TimeSpan.FromSeconds(2), stoppingToken);
        }
    }
}
