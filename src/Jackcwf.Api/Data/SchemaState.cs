using System.Data.Common;
using System.Diagnostics;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;

namespace Jackcwf.Api.Data;

/// <summary>True once this replica has seen the schema at its expected version.</summary>
public sealed class SchemaState
{
    private readonly TaskCompletionSource _current = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public bool IsCurrent => _current.Task.IsCompleted;

    public void MarkCurrent() => _current.TrySetResult();

    /// <summary>
    /// Completes once the schema is current. Background work that reads tables waits on this: a query
    /// before the first migration has created them fails, and EF Core logs that failure as an error.
    /// </summary>
    public Task WhenCurrentAsync(CancellationToken ct) => _current.Task.WaitAsync(ct);

    /// <summary>How long start-up work waits for readiness to answer once the schema is current, when nothing asks.</summary>
    internal static readonly TimeSpan ReadinessWait = TimeSpan.FromSeconds(3);

    private readonly TaskCompletionSource _readinessAnswered = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The readiness check found the schema current (the replica answers ready from now on).</summary>
    public void MarkReadinessAnswered() => _readinessAnswered.TrySetResult();

    /// <summary>
    /// Completes once the schema is current and readiness has answered with it, or
    /// <see cref="ReadinessWait"/> after the schema became current when nothing asks. Start-up work
    /// that can wait a moment (the first file sweep, the setup-token notice) waits on this instead of
    /// <see cref="WhenCurrentAsync"/>: its first queries then do not compete for the CPU with the
    /// replica's first readiness answer.
    /// </summary>
    public async Task WhenStartedAsync(CancellationToken ct)
    {
        await WhenCurrentAsync(ct);
        try
        {
            await _readinessAnswered.Task.WaitAsync(ReadinessWait, ct);
        }
        catch (TimeoutException)
        {
        }
    }
}
