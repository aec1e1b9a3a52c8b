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
}
