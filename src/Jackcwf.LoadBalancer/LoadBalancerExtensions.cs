using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Options;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Forwarder;

namespace Jackcwf.LoadBalancer;

public static class LoadBalancerExtensions
{
    /// <summary>The balancer's registrations; call <c>AddServiceDefaults</c> first (logging, telemetry, the Prometheus exporter).</summary>
    public static WebApplicationBuilder AddLoadBalancer(this WebApplicationBuilder builder)
    {
        var configuration = builder.Configuration;
        builder.Services.AddOptions<LoadBalancerOptions>()
            .Bind(configuration.GetSection(LoadBalancerOptions.Section))
            .PostConfigure(o => LoadBalancerOptions.ApplyAliases(o, configuration))
            .ValidateDataAnnotations()
            .Validate(o => o.BackendUris() is not null)
            .ValidateOnStart();

        // LB_PORT only applies when nobody chose the addresses explicitly (ASPNETCORE_URLS, --urls).
        if (string.IsNullOrEmpty(configuration[WebHostDefaults.ServerUrlsKey]))
        {
            var options = new LoadBalancerOptions();
            configuration.GetSection(LoadBalancerOptions.Section).Bind(options);
            LoadBalancerOptions.ApplyAliases(options, configuration);
            builder.WebHost.UseUrls($"http://*:{options.Port}");
        }

        builder.Services.AddSingleton<LoadBalancerMetrics>();
        builder.Services.AddSingleton<IForwarderHttpClientFactory, LoadBalancerHttpClientFactory>();
        builder.Services.AddReverseProxy()
            .LoadFromConfig(configuration.GetSection("ReverseProxy"))
            .AddConfigFilter<BackendsConfigFilter>()
            .AddTransforms(RetryOnAnotherDestination.AddRefusalTransform);

        // Telemetry and the exporter come from AddServiceDefaults; the balancer adds its own meter.
        builder.Services.ConfigureOpenTelemetryMeterProvider(metrics => metrics.AddMeter(LoadBalancerMetrics.MeterName));
        // Scrapes must see the counters of the request just made (tests, health-check.sh).
        builder.Services.Configure<PrometheusAspNetCoreOptions>(o => o.ScrapeResponseCacheDurationMilliseconds = 0);
        return builder;
    }

    public static WebApplication MapLoadBalancer(this WebApplication app)
    {
        // The destination-health gauge exists from the first scrape, not from the first proxied request.
        _ = app.Services.GetRequiredService<LoadBalancerMetrics>();
        _ = app.Services.GetRequiredService<IOptions<LoadBalancerOptions>>().Value;

        // Literal routes win over the proxy's catch-all, so these two are the balancer's own.
        app.MapPrometheusScrapingEndpoint("/metrics");
        app.MapLoadBalancerHealth();

        app.MapReverseProxy(proxy =>
        {
            proxy.UseMiddleware<RequestMetricsMiddleware>();
            proxy.UseMiddleware<RetryOnAnotherDestination>();
            proxy.UseSessionAffinity();
            proxy.UseLoadBalancing();
            proxy.UsePassiveHealthChecks();
        });
        return app;
    }
}
