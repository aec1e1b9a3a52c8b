using Npgsql;

namespace Jackcwf.HaTests;

/// <summary>
/// What the load driver and the ledger need from a deployment under test: clients through its load
/// balancer and a connection to its database. <see cref="HaCluster"/> is one; the data-tier tests
/// (Jackcwf.DataHaTests) drive a Patroni/Sentinel deployment started by deploy-ha.sh through it.
/// </summary>
public interface IHaTarget
{
    HttpClient CreateClient(Uri? baseUrl = null);

    Task<NpgsqlConnection> OpenDatabaseAsync();

    string Logs(int tailLines = 80);
}
