using System.Text.Json;
using System.Text.RegularExpressions;
using Jackcwf.DeploymentTests.Infrastructure;

namespace Jackcwf.DeploymentTests;

/// <summary>The Dockerfile (no Docker engine here: its structure, and that every path it copies exists).</summary>
public sealed class ContainerImageTests
{
    private static readonly IReadOnlyList<DockerInstruction> Instructions = Dockerfile.Instructions(Repo.Read("Dockerfile"));

    private static IEnumerable<DockerInstruction> Runtime => Instructions.Where(i => i.Stage == "runtime");

    [Fact]
    public void BuildsTheUiWithNodeThenPublishesWithTheSdkThenRunsOnTheAspNetImage()
    {
        var froms = Instructions.Where(i => i.Keyword == "FROM").Select(i => i.Arguments).ToList();

        Assert.Equal(3, froms.Count);
        Assert.Matches(@"^node:20[\w.-]* AS web$", froms[0]);
        Assert.Equal("mcr.microsoft.com/dotnet/sdk:10.0 AS build", froms[1]);
        Assert.Equal("mcr.microsoft.com/dotnet/aspnet:10.0 AS runtime", froms[2]);
        Assert.Contains(Instructions, i => i.Stage == "web" && i.Keyword == "RUN" && i.Arguments.StartsWith("npm ci", StringComparison.Ordinal));
        Assert.Contains(Instructions, i => i.Stage == "web" && i.Arguments == "npm run build");
        Assert.Contains(Instructions, i => i.Stage == "build" && i.Keyword == "RUN" && i.Arguments.Contains("dotnet publish src/Jackcwf.Api/Jackcwf.Api.csproj -c Release"));
    }

    [Fact]
    public void TheUiBuildLandsWhereTheSdkStageCopiesItFrom()
    {
        var viteConfig = Repo.Read("web", "vite.config.ts");
        var outDir = Regex.Match(viteConfig, @"outDir:\s*'([^']+)'").Groups[1].Value;
        var webWorkdir = Instructions.First(i => i.Stage == "web" && i.Keyword == "WORKDIR").Arguments;
        var copy = Instructions.Single(i => i.Stage == "build" && i.Arguments.StartsWith("--from=web ", StringComparison.Ordinal));

        Assert.Equal("../src/Jackcwf.Api/wwwroot", outDir);
        var builtAt = Path.GetFullPath(Path.Combine(webWorkdir, outDir)).Replace('\\', '/');
        Assert.Equal(builtAt, copy.Arguments.Split(' ')[1].TrimEnd('/'));
        Assert.True((bool?)JsonDocument.Parse(Repo.Read("web", "package.json")).RootElement.GetProperty("scripts").TryGetProperty("build", out _));
    }

    [Fact]
    public void EveryPathCopiedFromTheBuildContextExistsAndIsNotDockerIgnored()
    {
        var ignored = Repo.Read(".dockerignore").Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        var sources = Instructions
            .Where(i => i.Keyword == "COPY" && !i.Arguments.StartsWith("--from", StringComparison.Ordinal))
            .SelectMany(i => i.Arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries).Where(a => !a.StartsWith("--", StringComparison.Ordinal)).SkipLast(1))
            .ToList();

        Assert.NotEmpty(sources);
        Assert.All(sources, source =>
        {
            var path = Repo.PathOf(source.TrimEnd('/').Split('/'));
            Assert.True(File.Exists(path) || Directory.Exists(path), $"COPY source {source} does not exist");
            Assert.DoesNotContain(ignored, pattern => pattern.TrimEnd('/') == source.TrimEnd('/') || source.StartsWith(pattern.TrimEnd('/') + "/", StringComparison.Ordinal));
        });
        Assert.Contains(".env", ignored);
        Assert.Contains("secrets/", ignored);
    }

    [Fact]
    public void RuntimeRunsAsTheNonRootAppUserOnPort8080()
    {
        Assert.Equal("$APP_UID", Runtime.Last(i => i.Keyword == "USER").Arguments);
        Assert.Equal("8080", Runtime.Single(i => i.Keyword == "EXPOSE").Arguments);
        Assert.Contains(Runtime, i => i.Keyword == "ENV" && Regex.IsMatch(i.Arguments, @"(^|\s)PORT=8080(\s|$)"));
        // /app/data is the only directory the app user may write (SQLite); the app files stay root-owned.
        Assert.Contains(Runtime, i => i.Keyword == "RUN" && i.Arguments.Contains("chown \"$APP_UID:$APP_UID\" /app/data"));
        Assert.DoesNotContain(Runtime, i => i.Keyword == "COPY" && i.Arguments.Contains("--chown"));
    }

    [Fact]
    public void HealthcheckUsesTheServiceBinaryAndTheDefaultCommandCanBeReplacedByMigrate()
    {
        var healthcheck = Runtime.Single(i => i.Keyword == "HEALTHCHECK").Arguments;

        Assert.EndsWith("CMD [\"dotnet\", \"Jackcwf.Api.dll\", \"healthcheck\"]", healthcheck);
        Assert.DoesNotContain("curl", healthcheck);
        Assert.Equal("[\"dotnet\", \"Jackcwf.Api.dll\"]", Runtime.Single(i => i.Keyword == "CMD").Arguments);
        Assert.DoesNotContain(Instructions, i => i.Keyword == "ENTRYPOINT");
        Assert.Equal("/app", Runtime.Single(i => i.Keyword == "WORKDIR").Arguments);
    }
}
