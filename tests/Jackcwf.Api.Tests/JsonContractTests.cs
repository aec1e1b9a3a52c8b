using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Jackcwf.Api.Tests;

/// <summary>
/// Every JSON body a route declares it reads or writes is source-generated (AppJsonContext, the
/// framework's own contexts for Identity and problem details, and the /v1 routes' contexts, which read
/// their bodies directly): none falls back to the reflection resolver, which builds its metadata at run
/// time and keeps the service from being trimmed. The real Program runs in the test process on a SQLite
/// file of its own.
/// </summary>
public sealed class JsonContractTests
{
    [Fact]
    public void Every_routes_json_bodies_are_source_generated()
    {
        var dir = Directory.CreateTempSubdirectory("jackcwf-json-");
        try
        {
            using var factory = new WebApplicationFactory<Program>().WithWebHostBuilder(web =>
            {
                web.UseEnvironment("Production");
                web.ConfigureAppConfiguration(config => config.AddInMemoryCollection(new Dictionary<string, string?>
                {
                    ["Database:Url"] = $"sqlite:///{dir.FullName}/jackcwf.db",
                    ["Backup:IntervalHours"] = "0",
                    ["Monitoring:Enabled"] = "false",
                }));
            });
            var services = factory.Services;
            var configured = services.GetRequiredService<IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions>>().Value.SerializerOptions;
            // The app's resolvers without the reflection fallback ASP.NET Core appends, and the contexts the
            // /v1 routes read their bodies with (OpenAiCompatApi, EmbeddingsApi).
            var strict = new JsonSerializerOptions(configured)
            {
                TypeInfoResolver = JsonTypeInfoResolver.Combine(
                [
                    .. configured.TypeInfoResolverChain.Where(r => r is not DefaultJsonTypeInfoResolver),
                    OpenAiCompat.OpenAiJsonContext.Default,
                    OpenAiCompat.EmbeddingsJsonContext.Default,
                ]),
            };

            var endpoints = services.GetRequiredService<EndpointDataSource>().Endpoints;
            var types = new Dictionary<Type, string>();
            foreach (var endpoint in endpoints)
            {
                var route = (endpoint as RouteEndpoint)?.RoutePattern.RawText ?? endpoint.DisplayName ?? "?";
                foreach (var accepts in endpoint.Metadata.OfType<IAcceptsMetadata>())
                {
                    if (accepts.RequestType is { } t && accepts.ContentTypes.Any(c => c.Contains("json", StringComparison.OrdinalIgnoreCase)))
                    {
                        types.TryAdd(t, $"request body of {route}");
                    }
                }
                foreach (var produces in endpoint.Metadata.OfType<IProducesResponseTypeMetadata>())
                {
                    if (produces.Type is { } t && t != typeof(void) && produces.ContentTypes.Any(c => c.Contains("json", StringComparison.OrdinalIgnoreCase)))
                    {
                        types.TryAdd(t, $"response of {route}");
                    }
                }
            }
            Assert.NotEmpty(types);
            var missing = new List<string>();
            foreach (var (type, where) in types)
            {
                try
                {
                    strict.GetTypeInfo(type);
                }
                catch (NotSupportedException)
                {
                    missing.Add($"{type.FullName} ({where})");
                }
            }
            Assert.True(missing.Count == 0, $"{missing.Count} of {types.Count} JSON types are not source-generated:\n" + string.Join("\n", missing));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
