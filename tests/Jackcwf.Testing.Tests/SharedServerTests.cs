using Npgsql;

namespace Jackcwf.Testing.Tests;

// These use the servers ./test.sh starts (JACKCWF_TEST_POSTGRES, JACKCWF_TEST_REDIS).
public sealed class SharedServerTests
{
    [Fact]
    public async Task SharedPostgresGivesEachTestItsOwnDatabaseAndDropsIt()
    {
        var ct = TestContext.Current.CancellationToken;
        string name;
        await using (var first = await TestPostgres.CreateDatabaseAsync("shared", ct))
        await using (var second = await TestPostgres.CreateDatabaseAsync("shared", ct))
        {
            name = first.Name;
            Assert.NotEqual(first.Name, second.Name);
            Assert.StartsWith("postgresql://", first.Url);
            Assert.EndsWith("/" + first.Name, first.Url);
            await using var connection = await first.OpenConnectionAsync(ct);
            Assert.Equal(first.Name, await new NpgsqlCommand("SELECT current_database()", connection).ExecuteScalarAsync(ct));
        }

        await using var admin = new NpgsqlConnection(TestPostgres.AdminConnectionString);
        await admin.OpenAsync(ct);
        using var exists = new NpgsqlCommand("SELECT count(*) FROM pg_database WHERE datname = @name", admin);
        exists.Parameters.AddWithValue("name", name);
        Assert.Equal(0L, await exists.ExecuteScalarAsync(ct));
    }

    [Fact]
    public async Task SharedRedisReservesDistinctDatabases()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var first = await TestRedis.CreateDatabaseAsync(ct);
        await using var second = await TestRedis.CreateDatabaseAsync(ct);

        Assert.NotEqual(first.Database, second.Database);
        await first.GetDatabase().StringSetAsync(first.KeyPrefix + "k", "v");
        Assert.False(await second.GetDatabase().KeyExistsAsync(first.KeyPrefix + "k"));
        Assert.Equal($"redis://{TestRedis.HostAndPort}/{first.Database}", first.Url);
    }
}
