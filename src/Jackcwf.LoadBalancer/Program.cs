using Jackcwf.LoadBalancer;
using Jackcwf.ServiceDefaults;

// The balancer is configuration: routes, round robin, health checks, affinity and timeouts live in
// appsettings.json; the code adds only retries on another replica, metrics and /lb/health. Logging,
// OpenTelemetry and the Prometheus exporter are the service defaults every Jackcwf host shares.
// appsettings.json is found next to the binary, whatever the working directory of the caller.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.AddServiceDefaults("jackcwf-loadbalancer");
builder.AddLoadBalancer();

var app = builder.Build();
app.MapLoadBalancer();
app.Run();
