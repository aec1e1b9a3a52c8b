using System.Collections.Concurrent;
using Jackcwf.Api.Data;
using Microsoft.EntityFrameworkCore;

namespace Jackcwf.Api.Accounts;

/// <summary>Records keys' last-used time at most once a minute per key, off the request path.</summary>
public sealed class ApiKeyUsageTracker(IServiceScopeFactory scopes, TimeProvider time, ILogger<ApiKeyUsageTracker> logger) : BackgroundService
{
    private readonly ConcurrentDictionary<Guid, long> _pending = new();
    private readonly ConcurrentDictionary<Guid, long> _written = new();

    public void Touch(Guid keyId)
    {
        var now = Environment.TickCount64;
        if (!_written.TryGetValue(keyId, out var last) || now - last > 60_000)
        {
            _pending[keyId] = now;
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(5));
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            foreach (var id in _pending.Keys.ToArray())
            {
                _pending.TryRemove(id, out _);
                _written[id] = Environment.TickCount64;
                try
                {
                    await using var scope = scopes.CreateAsyncScope();
                    var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
                    var now = time.UtcNowForStorage();
                    await db.ApiKeys.Where(k => k.Id == id).ExecuteUpdateAsync(u => u.SetProperty(k => k.LastUsedAt, now), stoppingToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    logger.LogWarning("Could not record API key use: {Error}", ex.GetType().Name);
                }
            }
        }
    }
}
