using System.Text.RegularExpressions;
using Jackcwf.DeploymentTests.Infrastructure;
using k8s.Models;

namespace Jackcwf.DeploymentTests;

/// <summary>Every environment variable a deployment file sets for the service is one the service reads (docs/configuration.md).</summary>
public sealed partial class EnvironmentContractTests
{
    [Fact]
    public async Task KubernetesConfigMapSecretAndContainerEnvUseOnlyDocumentedVariables()
    {
        var objects = Kustomize.LoadStrict(await Kustomize.RenderEveryComponentAsync())
            .Concat(await Kustomize.LoadAsync("small"))
            .Concat(await Kustomize.LoadAsync("large"))
            .ToList();

        var names = new List<(string Where, string Name)>();
        // The ConfigMap the app reads with envFrom (others hold files, e.g. the Redis start scripts).
        names.AddRange(objects.OfType<V1ConfigMap>().Where(c => c.Metadata.Name == "jackcwf-config").SelectMany(c => c.Data.Keys.Select(k => ($"ConfigMap {c.Metadata.Name}", k))));
        names.AddRange(objects.OfType<V1Secret>().SelectMany(s => (s.StringData?.Keys ?? []).Concat(s.Data?.Keys ?? []).Select(k => ($"Secret {s.Metadata.Name}", k))));
        // Keys the Secret template shows as comments are names an operator will set too.
        names.AddRange(CommentedAssignments(Repo.Read("deployment", "kubernetes", "base", "secret.yaml"), @"#\s*([A-Z][A-Z0-9_]*):").Select(n => ("secret.yaml comment", n)));
        var containers = objects.OfType<V1Deployment>().Where(d => d.Metadata.Name == "jackcwf-backend").SelectMany(d => d.Spec.Template.Spec.Containers)
            .Concat(objects.OfType<V1Job>().SelectMany(j => j.Spec.Template.Spec.Containers));
        names.AddRange(containers.SelectMany(c => (c.Env ?? []).Select(e => ($"container {c.Name}", e.Name))));

        Assert.Contains(names, n => n.Name == "DATABASE_URL");
        Assert.Contains(names, n => n.Name == "REDIS_URL");
        AssertDocumented(names);
    }

    [Fact]
    public void ComposeAppServicesUseOnlyDocumentedVariables()
    {
        var names = Compose.AppServices.SelectMany(file =>
        {
            var services = Compose.Services(file.Key);
            return file.Value.SelectMany(s => Compose.EnvironmentKeys(services[s]!.AsObject()).Select(k => ($"{file.Key} service {s}", k)));
        }).ToList();

        Assert.Contains(names, n => n.Item2 == "MIGRATE_ON_STARTUP");
        AssertDocumented(names);
    }

    [Fact]
    public void EnvExampleUsesOnlyDocumentedVariablesIncludingTheCommentedOnes()
    {
        var text = Repo.Read(".env.example");
        var set = CommentedAssignments(text, @"^([A-Z][A-Z0-9_]*)=");
        var commented = CommentedAssignments(text, @"^#\s*([A-Z][A-Z0-9_]*)=");

        Assert.Contains("DATABASE_URL", set);
        Assert.Contains("OPENAI_API_KEY", commented);
        AssertDocumented(set.Concat(commented).Select(n => (".env.example", n)).ToList());
        // Compose reads .env for the app containers; both files point at it.
        Assert.Equal(".env", (string?)Compose.Services(Compose.SingleNode)["app"]!["env_file"]);
        Assert.Equal("../.env", (string?)Compose.Services(Compose.HighAvailability)["web"]!["env_file"]);
    }

    [Fact]
    public void DockerfileSetsOnlyDocumentedVariables()
    {
        var env = Dockerfile.Instructions(Repo.Read("Dockerfile")).Where(i => i.Keyword == "ENV")
            .SelectMany(i => EnvAssignment().Matches(i.Arguments).Select(m => ("Dockerfile ENV", m.Groups[1].Value)))
            .ToList();

        Assert.Contains(env, e => e.Item2 == "PORT");
        AssertDocumented(env);
    }

    [Fact]
    public void TheCheckRejectsAnUndocumentedName()
    {
        var error = Assert.ThrowsAny<Exception>(() => AssertDocumented([("example", "UVICORN_WORKER")]));

        Assert.Contains("UVICORN_WORKER", error.Message);
    }

    private static void AssertDocumented(List<(string Where, string Name)> names)
    {
        var unknown = names.Where(n => !ConfigurationContract.Variables.Contains(n.Name)).Distinct().ToList();
        Assert.True(unknown.Count == 0,
            "not in docs/configuration.md: " + string.Join(", ", unknown.Select(u => $"{u.Name} ({u.Where})")));
    }

    private static List<string> CommentedAssignments(string text, string pattern) =>
        text.Split('\n').Select(l => Regex.Match(l.Trim(), pattern)).Where(m => m.Success).Select(m => m.Groups[1].Value).ToList();

    [GeneratedRegex(@"(?:^|\s)([A-Z][A-Z0-9_]*)=")]
    private static partial Regex EnvAssignment();
}
