using Jackcwf.DeploymentTests.Infrastructure;

namespace Jackcwf.DeploymentTests;

/// <summary>Traefik's static and dynamic configuration against the Traefik v3 schemas (no Traefik binary is available).</summary>
public sealed class TraefikTests
{
    [Fact]
    public void StaticConfigurationMatchesTheTraefikV3Schema()
    {
        var errors = SchemaValidator.For("traefik-v3.json").Validate(Traefik.Static());

        Assert.True(errors.Count == 0, string.Join('\n', errors));
    }

    [Fact]
    public void SingleNodeStaticConfigurationMatchesTheTraefikV3Schema()
    {
        var errors = SchemaValidator.For("traefik-v3.json").Validate(Traefik.SingleNodeStatic());

        Assert.True(errors.Count == 0, string.Join('\n', errors));
    }

    [Theory]
    [InlineData("dynamic/dynamic.yml")]
    [InlineData("dynamic/admin.yml")]
    [InlineData("single-node/app.yml")]
    public void DynamicConfigurationMatchesTheTraefikV3FileProviderSchema(string file)
    {
        var dynamic = YamlJson.ParseObject(Repo.Read(["deployment", "traefik", .. file.Split('/')]));

        var errors = SchemaValidator.For("traefik-v3-file-provider.json").Validate(dynamic);

        Assert.True(errors.Count == 0, string.Join('\n', errors));
    }

    [Fact]
    public void SchemaValidationRejectsAMisspelledMiddlewareOption()
    {
        var dynamic = Traefik.Dynamic();
        dynamic["http"]!["middlewares"]!["retry"]!["retry"]!["attemps"] = 3;

        Assert.NotEmpty(SchemaValidator.For("traefik-v3-file-provider.json").Validate(dynamic));
    }

    [Fact]
    public void StaticConfigurationHasTheEntryPointsDashboardMetricsAndACertificateResolver()
    {
        var config = Traefik.Static();
        var entryPoints = config["entryPoints"]!.AsObject();

        Assert.Equal(":80", (string?)entryPoints["web"]!["address"]);
        Assert.Equal(":443", (string?)entryPoints["websecure"]!["address"]);
        Assert.Equal(":8080", (string?)entryPoints[(string)config["ping"]!["entryPoint"]!]!["address"]);
        Assert.True((bool?)config["api"]!["dashboard"]);
        Assert.NotNull(entryPoints[(string)config["metrics"]!["prometheus"]!["entryPoint"]!]);
        Assert.Equal("web", (string?)config["certificatesResolvers"]!["letsencrypt"]!["acme"]!["httpChallenge"]!["entryPoint"]);
        Assert.False((bool?)config["providers"]!["docker"]!["exposedByDefault"]);
        Assert.Equal("/etc/traefik/dynamic", (string?)config["providers"]!["file"]!["directory"]);
    }

    [Fact]
    public void MiddlewaresNeverBufferOrCompressEventStreamsAndNeverRepeatARequest()
    {
        var middlewares = Traefik.Dynamic()["http"]!["middlewares"]!.AsObject();

        Assert.True((int)middlewares["retry"]!["retry"]!["attempts"]! > 1);
        Assert.Contains("text/event-stream", middlewares["compress"]!["compress"]!["excludedContentTypes"]!.AsArray().Select(n => (string?)n));
        Assert.DoesNotContain(middlewares, m => m.Value!.AsObject().ContainsKey("buffering"));
        Assert.NotNull(middlewares["rate-limit"]!["rateLimit"]!["average"]);
        Assert.NotNull(middlewares["circuit-breaker"]!["circuitBreaker"]!["expression"]);
        Assert.True((bool?)middlewares["security-headers"]!["headers"]!["contentTypeNosniff"]);
    }

    [Fact]
    public void EntryPointsDoNotCutLongStreams()
    {
        var timeouts = Traefik.Static()["entryPoints"]!["web"]!["transport"]!["respondingTimeouts"]!;

        Assert.Equal("0s", (string?)timeouts["readTimeout"]);
        Assert.Equal("0s", (string?)timeouts["writeTimeout"]);
    }
}
