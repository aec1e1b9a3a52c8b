using Npgsql;

namespace Jackcwf.Testing.Tests;

public sealed class PostgresServerTests
{
    [Fact]
    public async Task ServerStopsRefusesConnectionsAndStartsAgainWithItsData()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var server = await PostgresServer.StartAsync(cancellationToken: ct);
        await using var database = await server.CreateDatabaseAsync("restart", ct);
        await using (var connection = await database.OpenConnectionAsync(ct))
        {
            await new NpgsqlCommand("CREATE TABLE notes (text text); INSERT INTO notes VALUES ('kept')", connection).ExecuteNonQueryAsync(ct);
        }

        Assert.True(server.IsRunning);
        var pid = server.Pid;
        await server.StopAsync(cancellationToken: ct);

        Assert.False(server.IsRunning);
        await Assert.ThrowsAnyAsync<NpgsqlException>(async () =>
        {
            await using var refused = new NpgsqlConnection(database.ConnectionString + ";Pooling=false;Timeout=3");
            await refused.OpenAsync(ct);
        });

        await server.StartAsync(ct);
        Assert.NotEqual(pid, server.Pid);
        NpgsqlConnection.ClearAllPools();
        await using var again = await database.OpenConnectionAsync(ct);
        Assert.Equal("kept", await new NpgsqlCommand("SELECT text FROM notes", again).ExecuteScalarAsync(ct));
    }

    [Fact]
    public async Task ImmediateStopRecoversOnRestartAndDatabasesAreDroppedOnDispose()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var server = await PostgresServer.StartAsync(cancellationToken: ct);
        Assert.InRange(server.Port, 1024, 32767);
        Assert.StartsWith("postgresql://postgres@127.0.0.1:", server.Url);

        await server.RestartAsync(PostgresStopMode.Immediate, ct);

        string name;
        await using (var database = await server.CreateDatabaseAsync("dropme", ct))
        {
            name = database.Name;
            Assert.StartsWith("jackcwf_dropme_", name);
            Assert.EndsWith($"/{name}", database.Url);
        }

        await using var admin = new NpgsqlConnection(server.ConnectionString);
        await admin.OpenAsync(ct);
        var exists = await new NpgsqlCommand($"SELECT count(*) FROM pg_database WHERE datname = '{name}'", admin).ExecuteScalarAsync(ct);
        Assert.Equal(0L, exists);
    }
}
