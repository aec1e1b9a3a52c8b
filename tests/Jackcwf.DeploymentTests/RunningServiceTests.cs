using System.Diagnostics;
using System.Net;
using Jackcwf.DeploymentTests.Infrastructure;
using Jackcwf.Testing;
using k8s.Models;

namespace Jackcwf.DeploymentTests;

/// <summary>
/// Cross-checks against the real service: the paths, ports and commands the manifests, Compose files,
/// Dockerfile and Traefik labels name are answered the way they expect.
/// </summary>
public sealed class RunningServiceTests(DeployedService service) : IClassFixture<DeployedService>
{
    [Fact]
    public void MigrationJobCommandAppliesTheSchemaAndExitsZero()
    {
        Assert.True(service.Migration.ExitCode == 0, service.Migration.Output);
    }

    [Fact]
    public async Task KubernetesProbePathsAnswer200OnTheReplica()
    {
        var container = (await Kustomize.LoadAsync("medium")).OfType<V1Deployment>().Single(d => d.Metadata.Name == "jackcwf-backend")
            .Spec.Template.Spec.Containers.Single();
        using var http = service.Api.CreateClient();

        foreach (var probe in new[] { container.StartupProbe, container.ReadinessProbe, container.LivenessProbe })
        {
            using var response = await http.GetAsync(probe.HttpGet.Path.TrimStart('/'), TestContext.Current.CancellationToken);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{probe.HttpGet.Path} answered {(int)response.StatusCode}");
        }
    }

    [Fact]
    public async Task ServiceListensOnThePortTheManifestsProbe()
    {
        var objects = await Kustomize.LoadAsync("medium");
        var container = objects.OfType<V1Deployment>().Single(d => d.Metadata.Name == "jackcwf-backend").Spec.Template.Spec.Containers.Single();
        var named = container.Ports.Single(p => p.Name == (string)container.ReadinessProbe.HttpGet.Port.Value);
        var compose = Compose.Services(Compose.HighAvailability)["web"]!.AsObject();
        Assert.Equal(service.ConfigMap.Data["PORT"], named.ContainerPort.ToString());
        Assert.Equal(service.ConfigMap.Data["PORT"], Compose.Environment(compose, "PORT"));

        // As in the container: no ASPNETCORE_URLS, only PORT (here a free port instead of 8080,
        // which other software on a shared machine may hold).
        var port = DeployedService.FreePort();
        var environment = service.Environment(port);
        environment["ASPNETCORE_URLS"] = null;
        environment["ASPNETCORE_HTTP_PORTS"] = null;
        var options = service.Options(environment, port);
        await using var replica = await ApiProcess.StartAsync(options, TestContext.Current.CancellationToken);
        using var http = replica.CreateClient();

        using var response = await http.GetAsync(container.LivenessProbe.HttpGet.Path.TrimStart('/'), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    public static TheoryData<string, string> HealthcheckCommands => new()
    {
        { "Dockerfile", "HEALTHCHECK" },
        { Compose.SingleNode, "app" },
        { Compose.HighAvailability, "web" },
    };

    [Theory]
    [MemberData(nameof(HealthcheckCommands))]
    public async Task ContainerHealthcheckCommandExitsZeroAgainstAReadyReplica(string file, string where)
    {
        var arguments = HealthcheckArguments(file, where);
        var environment = service.Environment(service.Api.Port);

        var result = await ApiProcess.RunCommandAsync(arguments, service.Options(environment, DeployedService.FreePort()), TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);

        Assert.True(result.ExitCode == 0, $"{file} {where}: `dotnet Jackcwf.Api.dll {string.Join(' ', arguments)}` exited {result.ExitCode}:\n{result.Output}");
    }

    [Fact]
    public async Task ContainerHealthcheckCommandFailsWhenNothingAnswers()
    {
        var arguments = HealthcheckArguments(Compose.HighAvailability, "web");
        var unused = DeployedService.FreePort();

        var result = await ApiProcess.RunCommandAsync(arguments, service.Options(service.Environment(unused), DeployedService.FreePort()), TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);

        Assert.NotEqual(0, result.ExitCode);
    }

    [Fact]
    public async Task TraefikHealthCheckPathAnswers200()
    {
        var labels = Compose.Labels(Compose.Services(Compose.HighAvailability)["web"]!.AsObject());
        var path = labels["traefik.http.services.web.loadBalancer.healthCheck.path"];
        using var http = service.Api.CreateClient();

        using var response = await http.GetAsync(path.TrimStart('/'), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task ServiceMonitorPathServesPrometheusMetrics()
    {
        var objects = await Kustomize.LoadAsync("medium");
        var endpoint = objects.OfType<ServiceMonitor>().Single().Spec!.Endpoints!.Single();
        var container = objects.OfType<V1Deployment>().Single(d => d.Metadata.Name == "jackcwf-backend").Spec.Template.Spec.Containers.Single();
        Assert.Equal(service.ConfigMap.Data["METRICS_PORT"], container.Ports.Single(p => p.Name == endpoint.Port).ContainerPort.ToString());
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{service.MetricsPort}/") };

        using var response = await http.GetAsync(endpoint.Path!.TrimStart('/'), TestContext.Current.CancellationToken);
        var body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("# TYPE ", body);
    }

    [Theory]
    [InlineData(Compose.SingleNode, "app")]
    [InlineData(Compose.HighAvailability, "web")]
    public async Task ServiceStartsWithTheComposeSettingsAndEnvExampleValues(string file, string serviceName)
    {
        // The service validates every setting at start-up and refuses bad values, so a replica that
        // becomes ready proves the values (not just the names) are acceptable.
        var service = Compose.Services(file)[serviceName]!.AsObject();
        var environment = Repo.Read(".env.example").Split('\n').Select(l => l.Trim())
            .Where(l => l.Length > 0 && !l.StartsWith('#') && l.Contains('='))
            .Select(l => l.Split('=', 2))
            .ToDictionary(p => p[0], p => (string?)p[1]);
        foreach (var key in Compose.EnvironmentKeys(service)) environment[key] = Compose.Environment(service, key);
        environment["DATABASE_URL"] = null;       // the Compose host "postgres" does not exist here: SQLite
        environment["REDIS_URL"] = null;
        environment["MIGRATE_ON_STARTUP"] = "true";
        environment["PORT"] = null;
        var port = DeployedService.FreePort();
        environment["METRICS_PORT"] = DeployedService.FreePort(exclude: port).ToString();

        await using var replica = await ApiProcess.StartAsync(
            new ApiProcessOptions { Environment = environment, Port = port }, TestContext.Current.CancellationToken);

        Assert.False(replica.HasExited);
    }

    [Fact]
    public async Task OnSigtermReadinessFailsAtOnceAndTheProcessExitsWithinTheGracePeriod()
    {
        // A second replica with short timings: the shape of the shutdown, not its length, is under test.
        var environment = service.Environment();
        environment["SHUTDOWN_DRAIN_DELAY_SECONDS"] = "2";
        environment["GRACEFUL_SHUTDOWN_TIMEOUT"] = "3";
        await using var replica = await ApiProcess.StartAsync(service.Options(environment, DeployedService.FreePort()), TestContext.Current.CancellationToken);
        using var http = replica.CreateClient();
        var grace = (await Kustomize.LoadAsync("medium")).OfType<V1Deployment>().Single(d => d.Metadata.Name == "jackcwf-backend")
            .Spec.Template.Spec.TerminationGracePeriodSeconds!.Value;

        var stopwatch = Stopwatch.StartNew();
        Signals.Send(replica.Pid, Signals.SigTerm);
        await Task.Delay(500, TestContext.Current.CancellationToken);
        using var ready = await http.GetAsync("health/ready", TestContext.Current.CancellationToken);
        using var live = await http.GetAsync("health/live", TestContext.Current.CancellationToken);
        var exitCode = await replica.StopAsync(TimeSpan.FromSeconds(grace));

        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        Assert.Equal(0, exitCode);
        Assert.True(stopwatch.Elapsed >= TimeSpan.FromSeconds(2), $"the listener closed after {stopwatch.Elapsed}, before the drain delay");
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(2 + 3 + 10), $"exit took {stopwatch.Elapsed}, longer than drain + shutdown timeout");
    }

    /// <summary>The healthcheck command of a Compose service or the Dockerfile, as arguments after the dll.</summary>
    private static string[] HealthcheckArguments(string file, string where)
    {
        string[] command = file == "Dockerfile"
            ? System.Text.Json.JsonSerializer.Deserialize<string[]>(Dockerfile.Instructions(Repo.Read("Dockerfile")).Single(i => i.Keyword == "HEALTHCHECK").Arguments.Split("CMD ", 2)[1])!
            : [.. Compose.Services(file)[where]!["healthcheck"]!["test"]!.AsArray().Select(n => (string)n!).Skip(1)];
        Assert.Equal(["dotnet", "Jackcwf.Api.dll"], command[..2]);
        return command[2..];
    }

    [Fact]
    public async Task Hole14_MetricsAnswerOnlyOnTheMetricsPortEvenWithASpoofedHostHeader()
    {
        var port = DeployedService.FreePort();
        var metricsPort = DeployedService.FreePort(exclude: port);
        var environment = service.Environment(port);
        environment["METRICS_PORT"] = metricsPort.ToString();
        await using var replica = await ApiProcess.StartAsync(service.Options(environment, port), TestContext.Current.CancellationToken);
        using var http = replica.CreateClient();
        using var metricsHttp = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{metricsPort}/") };
        var ct = TestContext.Current.CancellationToken;

        using var publicMetrics = await http.GetAsync("metrics", ct);
        using var spoofed = new HttpRequestMessage(HttpMethod.Get, "metrics") { Headers = { Host = $"127.0.0.1:{metricsPort}" } };
        using var spoofedMetrics = await http.SendAsync(spoofed, ct);
        using var publicHealth = await http.GetAsync("health/live", ct);
        using var internalMetrics = await metricsHttp.GetAsync("metrics", ct);
        using var internalApi = await metricsHttp.GetAsync("api/models", ct);

        Assert.Equal(HttpStatusCode.NotFound, publicMetrics.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, spoofedMetrics.StatusCode);
        Assert.Equal(HttpStatusCode.OK, publicHealth.StatusCode);
        Assert.Equal(HttpStatusCode.OK, internalMetrics.StatusCode);
        Assert.Contains("# TYPE ", await internalMetrics.Content.ReadAsStringAsync(ct));
        Assert.Equal(HttpStatusCode.NotFound, internalApi.StatusCode);
    }

    [Fact]
    public async Task Hole14_ApiReferenceIsOffOutsideDevelopmentAndHasItsOwnCspWhenOn()
    {
        var ct = TestContext.Current.CancellationToken;
        var port = DeployedService.FreePort();
        var environment = service.Environment(port);
        environment["API_REFERENCE_ENABLED"] = null;
        environment["ASPNETCORE_ENVIRONMENT"] = null;
        environment["DOTNET_ENVIRONMENT"] = null;
        await using (var production = await ApiProcess.StartAsync(service.Options(environment, port), ct))
        {
            using var http = production.CreateClient();
            foreach (var path in new[] { "openapi/v1.json", "scalar", "scalar/" })
            {
                using var response = await http.GetAsync(path, ct);
                Assert.True(response.StatusCode == HttpStatusCode.NotFound, $"{path} answered {(int)response.StatusCode} with the default configuration");
            }
        }

        environment["API_REFERENCE_ENABLED"] = "true";
        await using var enabled = await ApiProcess.StartAsync(service.Options(environment, port), ct);
        using var client = enabled.CreateClient();
        using var document = await client.GetAsync("openapi/v1.json", ct);
        using var page = await client.GetAsync("scalar/", ct);

        Assert.Equal(HttpStatusCode.OK, document.StatusCode);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        var csp = string.Join(' ', page.Headers.GetValues("Content-Security-Policy"));
        Assert.Contains("frame-ancestors 'none'", csp);
        Assert.Contains("object-src 'none'", csp);
        Assert.DoesNotContain("unsafe-eval", csp);
    }
}
