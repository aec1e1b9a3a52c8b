namespace Jackcwf.Api.RobustnessTests.Infrastructure;

/// <summary>
/// Ports for the services these tests start, from one fixed block so that parallel test runs of
/// other suites (which pick random ports) rarely collide with them.
/// </summary>
internal static class Ports
{
    public static int Next() => FreePort.InRange(23100, 23999);
}
