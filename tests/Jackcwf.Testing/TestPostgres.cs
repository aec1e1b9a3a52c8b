using Npgsql;

namespace Jackcwf.Testing;

/// <summary>
/// The shared PostgreSQL server of the test run (<c>JACKCWF_TEST_POSTGRES</c>, an Npgsql connection
/// string of a role that may create databases). Each test gets its own database.
/// </summary>
public static class TestPostgres
{
    public const string EnvironmentVariable = "JACKCWF_TEST_POSTGRES";

    public static bool IsConfigured => !string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(EnvironmentVariable));

    /// <summary>The configured connection string; throws with instructions when it is missing.</summary>
    public static string AdminConnectionString =>
        Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException(
                $"PostgreSQL for tests is not configured: run ./test.sh (it installs and starts one) or set {EnvironmentVariable} (e.g. Host=127.0.0.1;Port=5433;Username=postgres).");

    /// <summary>Creates a uniquely named empty database; disposing the result drops it.</summary>
    public static Task<TestDatabase> CreateDatabaseAsync(string? namePrefix = null, CancellationToken cancellationToken = default) =>
        TestDatabase.CreateAsync(AdminConnectionString, namePrefix, cancellationToken);
}

/// <summary>A throwaway database: created empty, dropped (WITH (FORCE)) on dispose.</summary>
public sealed class TestDatabase : IAsyncDisposable
{
    private readonly string _adminConnectionString;

    private TestDatabase(string adminConnectionString, string name)
    {
        _adminConnectionString = adminConnectionString;
        Name = name;
        var builder = new NpgsqlConnectionStringBuilder(adminConnectionString) { Database = name };
        ConnectionString = builder.ConnectionString;
        var credentials = Uri.EscapeDataString(builder.Username ?? "postgres")
            + (string.IsNullOrEmpty(builder.Password) ? "" : ":" + Uri.EscapeDataString(builder.Password));
        Url = $"postgresql://{credentials}@{builder.Host ?? "127.0.0.1"}:{builder.Port}/{name}";
    }

    public string Name { get; }

    /// <summary>Npgsql connection string of this database.</summary>
    public string ConnectionString { get; }

    /// <summary><c>postgresql://user[:password]@host:port/name</c>, the form <c>DATABASE_URL</c> takes.</summary>
    public string Url { get; }

    public async Task<NpgsqlConnection> OpenConnectionAsync(CancellationToken cancellationToken = default)
    {
        var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync(cancellationToken);
        return connection;
    }

    internal static async Task<TestDatabase> CreateAsync(string adminConnectionString, string? namePrefix, CancellationToken cancellationToken)
    {
        var prefix = new string((namePrefix ?? "test").ToLowerInvariant().Where(c => char.IsAsciiLetterOrDigit(c) || c == '_').Take(30).ToArray());
        var name = $"jackcwf_{prefix}_{Guid.NewGuid():N}"[..Math.Min(63, 9 + prefix.Length + 32)];
        var database = new TestDatabase(adminConnectionString, name);
        await database.ExecuteAdminAsync($"CREATE DATABASE \"{name}\"", cancellationToken);
        return database;
    }

    public async ValueTask DisposeAsync()
    {
        // Pooled connections to a dropped database would fail on their next use in this process.
        await using (var connection = new NpgsqlConnection(ConnectionString))
        {
            NpgsqlConnection.ClearPool(connection);
        }

        try
        {
            await ExecuteAdminAsync($"DROP DATABASE IF EXISTS \"{Name}\" WITH (FORCE)", CancellationToken.None);
        }
        catch (NpgsqlException)
        {
            // The server is gone (a test stopped it); there is nothing left to drop.
        }
    }

    private async Task ExecuteAdminAsync(string sql, CancellationToken cancellationToken)
    {
        var builder = new NpgsqlConnectionStringBuilder(_adminConnectionString) { Pooling = false };
        if (string.IsNullOrEmpty(builder.Database) || builder.Database == Name)
        {
            builder.Database = "postgres";
        }

        await using var connection = new NpgsqlConnection(builder.ConnectionString);
        await connection.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }
}
