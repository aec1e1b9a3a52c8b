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
    private volatile bool _current;

    public bool IsCurrent => _current;

    public void MarkCurrent() => _current = true;
}
