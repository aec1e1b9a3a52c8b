using System.Globalization;
using StackExchange.Redis;

namespace Jackcwf.Testing;

/// <summary>
/// The shared Redis of the test run (<c>JACKCWF_TEST_REDIS</c>, <c>host:port</c>). Each test gets a
/// logical database of its own, reserved across processes, plus a unique key prefix.
/// </summary>
public static class TestRedis
{
    public const string EnvironmentVariable = "JACKCWF_TEST_REDIS";

    internal const string ReservationKeyPrefix = "jackcwf-test:reserved-db:";

    private static readonly SemaphoreSlim ConnectGate = new(1, 1);
    private static readonly Dictionary<string, ConnectionMultiplexer> Admins = [];

    public static bool IsConfigured => !string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(EnvironmentVariable));

    /// <summary><c>host:port</c> of the shared server; throws with instructions when it is missing.</summary>
    public static string HostAndPort =>
        Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } value
            ? value.Trim()
            : throw new InvalidOperationException(
                $"Redis for tests is not configured: run ./test.sh (it installs and starts one) or set {EnvironmentVariable} (e.g. 127.0.0.1:6380).");

    /// <summary>Reserves an empty logical database (1 and up; 0 keeps the reservations) until disposed.</summary>
    public static Task<TestRedisDatabase> CreateDatabaseAsync(CancellationToken cancellationToken = default) =>
        CreateDatabaseAsync(HostAndPort, cancellationToken);

    /// <summary>The same on the server at <paramref name="hostAndPort"/> (e.g. a <see cref="RedisServer"/>).</summary>
    public static async Task<TestRedisDatabase> CreateDatabaseAsync(string hostAndPort, CancellationToken cancellationToken = default)
    {
        var admin = await AdminAsync(hostAndPort);
        return await TestRedisDatabase.ReserveAsync(admin, hostAndPort, cancellationToken);
    }

    private static async Task<ConnectionMultiplexer> AdminAsync(string hostAndPort)
    {
        await ConnectGate.WaitAsync();
        try
        {
            if (Admins.TryGetValue(hostAndPort, out var existing))
            {
                return existing;
            }

            var options = ConfigurationOptions.Parse(hostAndPort);
            options.AllowAdmin = true;
            options.AbortOnConnectFail = true;
            options.ConnectTimeout = 5000;
            // Kept for the whole run: the multiplexer reconnects by itself after a server restart.
            var admin = await ConnectionMultiplexer.ConnectAsync(options);
            Admins[hostAndPort] = admin;
            return admin;
        }
        finally
        {
            ConnectGate.Release();
        }
    }
}

/// <summary>A logical Redis database reserved for one test; flushed when reserved and when disposed.</summary>
public sealed class TestRedisDatabase : IAsyncDisposable
{
    private readonly ConnectionMultiplexer _admin;
    private readonly string _token;

    private TestRedisDatabase(ConnectionMultiplexer admin, string hostAndPort, int database, string token)
    {
        _admin = admin;
        _token = token;
        HostAndPort = hostAndPort;
        Database = database;
        KeyPrefix = $"t{Guid.NewGuid():N}:";
    }

    public string HostAndPort { get; }

    /// <summary>The logical database number.</summary>
    public int Database { get; }

    /// <summary>A unique prefix, for tests that share one database on purpose.</summary>
    public string KeyPrefix { get; }

    /// <summary><c>redis://host:port/db</c>, the form <c>REDIS_URL</c> takes.</summary>
    public string Url => $"redis://{HostAndPort}/{Database}";

    /// <summary>StackExchange.Redis configuration string selecting this database.</summary>
    public string Configuration => $"{HostAndPort},defaultDatabase={Database}";

    /// <summary>This database through the shared admin connection.</summary>
    public IDatabase GetDatabase() => _admin.GetDatabase(Database);

    internal static async Task<TestRedisDatabase> ReserveAsync(ConnectionMultiplexer admin, string hostAndPort, CancellationToken cancellationToken)
    {
        var server = admin.GetServers().First();
        var configured = (await server.ConfigGetAsync("databases")).FirstOrDefault().Value;
        var count = int.TryParse(configured, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) ? n : 16;
        var reservations = admin.GetDatabase(0);
        var token = $"{Environment.ProcessId}:{Guid.NewGuid():N}";
        // Start at a random database so parallel test processes rarely contend for the same one.
        var offset = Random.Shared.Next(count - 1);
        for (var i = 0; i < count - 1; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var database = 1 + ((offset + i) % (count - 1));
            // Expiry frees databases of crashed runs; a test never lives this long.
            if (await reservations.StringSetAsync(TestRedis.ReservationKeyPrefix + database, token, TimeSpan.FromHours(1), When.NotExists))
            {
                await server.FlushDatabaseAsync(database);
                return new TestRedisDatabase(admin, hostAndPort, database, token);
            }
        }

        throw new InvalidOperationException(
            $"All {count - 1} Redis test databases on {hostAndPort} are reserved; start the test Redis with a larger --databases.");
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _admin.GetServers().First().FlushDatabaseAsync(Database);
            var reservations = _admin.GetDatabase(0);
            var key = TestRedis.ReservationKeyPrefix + Database;
            if (await reservations.StringGetAsync(key) == _token)
            {
                await reservations.KeyDeleteAsync(key);
            }
        }
        catch (RedisException)
        {
            // The server is gone; its reservation expires on its own.
        }
    }
}
