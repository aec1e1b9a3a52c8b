namespace Jackcwf.Api.RobustnessTests.Infrastructure;

/// <summary>
/// Ports for the services these tests start, from one fixed block so that parallel test runs of
/// other suites (which pick random ports) rarely collide with them.
/// </summary>
internal static class Ports
{
    private const int Low = 23100;
    private const int High = 23999;
    private static int _next = Low + Random.Shared.Next(0, 200);

    public static int Next()
    {
        for (var attempt = 0; attempt < High - Low; attempt++)
        {
            var port = Low + ((Interlocked.Increment(ref _next) - Low) % (High - Low));
            if (FreePort.IsFree(port))
            {
                return port;
            }
        }
        throw new InvalidOperationException($"No free port between {Low} and {High}.");
    }
}
