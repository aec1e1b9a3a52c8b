using Jackcwf.ServiceDefaults;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;

namespace Jackcwf.LoadBalancer.Tests;

/// <summary>
/// The real balancer (same registration as Program.cs, same appsettings.json) hosted in the test
/// process on 127.0.0.1 and a free port, in front of the given replicas.
/// </summary>
public sealed class Balancer : IAsyncDisposable
{
    /// <summary>Turns active and passive health checks off, so a dead replica stays in rotation.</summary>
    public static readonly string[] WithoutHealthChecks =
    [
        "--ReverseProxy:Clusters:jackcwf:HealthCheck:Active:Enabled=false",
        "--ReverseProxy:Clusters:jackcwf:HealthCheck:Passive:Enabled=false",
    ];

    private readonly WebApplication _app;

    private Balancer(WebApplication app, Uri url)
    {
        _app = app;
        Url = url;
    }

    public Uri Url { get; }

    public static async Task<Balancer> StartAsync(IEnumerable<Uri> replicas, params string[] settings)
    {
        string[] args =
        [
            "--urls=http://127.0.0.1:0",
            "--Logging:LogLevel:Default=Warning",
            "--Logging:LogLevel:Yarp=Error",
            .. settings,
        ];
        if (replicas.Any())
        {
            args = [.. args, "--Backends=" + string.Join(',', replicas)];
        }
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        builder.AddServiceDefaults("jackcwf-loadbalancer");
        builder.AddLoadBalancer();
        var app = builder.Build();
        app.MapLoadBalancer();
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        return new Balancer(app, new Uri(address.EndsWith('/') ? address : address + "/"));
    }

    public HttpClient Client(HttpMessageHandler? handler = null) =>
        new(handler ?? new SocketsHttpHandler { UseCookies = false }) { BaseAddress = Url, Timeout = TimeSpan.FromSeconds(90) };

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
