using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Jackcwf.LoadBalancer.Tests;

/// <summary>
/// A stand-in for one service replica: a Kestrel app on 127.0.0.1 with a readiness endpoint the
/// balancer probes and a few endpoints that misbehave on purpose. It counts what it received.
/// </summary>
public sealed class FakeReplica : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, int> _hits = new();

    private FakeReplica(string name, WebApplication app)
    {
        Name = name;
        _app = app;
    }

    public string Name { get; }
    public Uri Url { get; private set; } = null!;

    /// <summary>What /health/ready answers: 200 when true, 503 (draining) when false.</summary>
    public bool Ready { get; set; } = true;

    /// <summary>When true every request except /health/ready gets 503, like a replica that refuses work.</summary>
    public bool RefuseWith503 { get; set; }

    /// <summary>Released by a test to let /sse finish.</summary>
    public TaskCompletionSource ReleaseStream { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public bool StreamFinished { get; private set; }

    public int Hits(string path) => _hits.GetValueOrDefault(path);

    public int TotalHits => _hits.Values.Sum();

    public static async Task<FakeReplica> StartAsync(string name)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(o => o.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var replica = new FakeReplica(name, app);
        replica.MapEndpoints();
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        replica.Url = new Uri(address.EndsWith('/') ? address : address + "/");
        return replica;
    }

    public async Task StopAsync() => await _app.StopAsync();

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();

    /// <summary>A loopback URL on which nothing listens: connections are refused.</summary>
    public static Uri RefusingUrl()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return new Uri($"http://127.0.0.1:{port}/");
    }

    private void MapEndpoints()
    {
        _app.Use(async (context, next) =>
        {
            var path = context.Request.Path.Value ?? "/";
            if (path == "/health/ready")
            {
                context.Response.StatusCode = Ready ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable;
                return;
            }
            _hits.AddOrUpdate(path, 1, (_, n) => n + 1);
            if (RefuseWith503)
            {
                context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                await context.Response.WriteAsync($"{Name} is draining");
                return;
            }
            await next(context);
        });

        _app.MapGet("/whoami", () => Name);

        _app.MapPost("/echo", async (HttpRequest request) =>
        {
            using var reader = new StreamReader(request.Body);
            return $"{Name}:{await reader.ReadToEndAsync()}";
        });

        // Reads the whole request, then drops the connection without answering.
        _app.MapPost("/reset", async (HttpContext context) =>
        {
            using var reader = new StreamReader(context.Request.Body);
            await reader.ReadToEndAsync();
            context.Abort();
        });

        // Starts answering, then dies: the client has received bytes already.
        _app.MapGet("/die-mid-response", async (HttpContext context) =>
        {
            context.Response.ContentType = "text/plain";
            await context.Response.WriteAsync("partial answer from " + Name);
            await context.Response.Body.FlushAsync();
            await Task.Delay(200);
            context.Abort();
        });

        // One event at once, the second only when the test releases it.
        _app.MapGet("/sse", async (HttpContext context) =>
        {
            context.Response.ContentType = "text/event-stream";
            await context.Response.WriteAsync($"event: delta\nid: 1\ndata: {{\"text\":\"first from {Name}\"}}\n\n");
            await context.Response.Body.FlushAsync();
            await ReleaseStream.Task.WaitAsync(TimeSpan.FromSeconds(30), context.RequestAborted);
            await context.Response.WriteAsync("event: done\nid: 2\ndata: {}\n\n");
            StreamFinished = true;
        });

        // Silent for `seconds`, with only keep-alive comments every `every` seconds, then one event.
        _app.MapGet("/sse-silent", async (HttpContext context, int seconds, int every) =>
        {
            context.Response.ContentType = "text/event-stream";
            await context.Response.WriteAsync("event: start\ndata: {}\n\n");
            await context.Response.Body.FlushAsync();
            for (var waited = 0; waited < seconds; waited += every)
            {
                await Task.Delay(TimeSpan.FromSeconds(every), context.RequestAborted);
                await context.Response.WriteAsync(": keep-alive\n\n");
                await context.Response.Body.FlushAsync();
            }
            await context.Response.WriteAsync("event: done\ndata: {}\n\n");
        });
    }
}
