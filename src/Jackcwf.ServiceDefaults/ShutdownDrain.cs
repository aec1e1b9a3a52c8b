using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Jackcwf.ServiceDefaults;

/// <summary>Work that must wind down after the drain delay and before the listener closes.</summary>
public interface IShutdownParticipant
{
    Task OnDrainedAsync(TimeSpan gracefulTimeout);
}

/// <summary>
/// SIGTERM → readiness 503 at once (<see cref="DrainState"/>), requests still served for the drain
/// delay so load balancers notice, then participants get the graceful timeout and the server stops.
/// Runs in <see cref="IHostedLifecycleService.StoppingAsync"/>, i.e. before Kestrel stops listening.
/// </summary>
internal sealed class ShutdownDrainService(
    DrainState drain,
    IEnumerable<IShutdownParticipant> participants,
    IOptions<ShutdownOptions> options,
    ILogger<ShutdownDrainService> logger) : IHostedLifecycleService
{
    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        drain.BeginDraining();
        var delay = TimeSpan.FromSeconds(options.Value.DrainDelaySeconds);
        var graceful = TimeSpan.FromSeconds(options.Value.GracefulShutdownTimeoutSeconds);
        if (!drain.ReadinessProbed)
        {
            // Nothing ever asked for readiness, so no balancer routes here and nobody must be told.
            delay = TimeSpan.Zero;
            logger.LogInformation("Shutdown requested: no load balancer or orchestrator has probed /health/ready, so no drain delay");
        }
        else
        {
            logger.LogInformation("Shutdown requested: readiness is now 503; serving for {DrainDelay}s more before closing the listener", delay.TotalSeconds);
        }
        if (delay > TimeSpan.Zero)
        {
            await Task.Delay(delay, CancellationToken.None);
        }
        foreach (var p in participants)
        {
            await p.OnDrainedAsync(graceful);
        }
        logger.LogInformation("Drain delay over: closing the listener; running work has {Graceful}s to finish", graceful.TotalSeconds);
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

public static class ShutdownDrainExtensions
{
    /// <summary>
    /// Registers the drain sequence and sizes the host's shutdown timeout to cover drain delay plus
    /// graceful timeout plus a margin for final writes.
    /// </summary>
    public static IHostApplicationBuilder AddDrainOnShutdown(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<ShutdownOptions>().BindConfiguration(ShutdownOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddHostedService<ShutdownDrainService>();
        // The host reads HostOptions while it is built, before start-up validation: an invalid value
        // falls back to the defaults here and is reported by the validator a moment later.
        builder.Services.AddOptions<HostOptions>().Configure<IConfiguration>((o, configuration) =>
        {
            var shutdown = new ShutdownOptions();
            try
            {
                configuration.GetSection(ShutdownOptions.Section).Bind(shutdown);
            }
            catch (InvalidOperationException)
            {
                shutdown = new ShutdownOptions();
            }
            var delay = Math.Clamp(shutdown.DrainDelaySeconds, 0, 600);
            var graceful = Math.Clamp(shutdown.GracefulShutdownTimeoutSeconds, 0, 3600);
            o.ShutdownTimeout = TimeSpan.FromSeconds(delay + graceful + 15);
        });
        return builder;
    }
}
