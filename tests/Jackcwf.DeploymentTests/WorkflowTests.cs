using System.Text.Json.Nodes;
using Jackcwf.DeploymentTests.Infrastructure;

namespace Jackcwf.DeploymentTests;

/// <summary>The GitHub workflows' structure (no schema of today's workflow syntax is available offline).</summary>
public sealed class WorkflowTests
{
    private static JsonObject Workflow(string name) => YamlJson.ParseObject(Repo.Read(".github", "workflows", name));

    private static IEnumerable<JsonObject> Steps(JsonObject workflow) =>
        workflow["jobs"]!.AsObject().SelectMany(j => j.Value!["steps"]!.AsArray().Select(s => s!.AsObject()));

    public static TheoryData<string> Workflows => ["ci.yml", "release.yml", "deploy.yml"];

    [Theory]
    [MemberData(nameof(Workflows))]
    public void EveryJobRunsOnAHostedRunnerWithATimeoutAndNamedSteps(string name)
    {
        var workflow = Workflow(name);

        Assert.False(string.IsNullOrEmpty((string?)workflow["name"]));
        Assert.NotNull(workflow["on"]);
        Assert.NotNull(workflow["permissions"]);
        Assert.All(workflow["jobs"]!.AsObject(), job =>
        {
            Assert.StartsWith("ubuntu-", (string?)job.Value!["runs-on"]);
            Assert.True((int?)job.Value["timeout-minutes"] > 0, $"{name}/{job.Key}: timeout-minutes");
            Assert.All(job.Value["steps"]!.AsArray(), s =>
            {
                Assert.False(string.IsNullOrEmpty((string?)s!["name"]), $"{name}/{job.Key}: unnamed step");
                Assert.True(s["uses"] is not null ^ s["run"] is not null, $"{name}/{job.Key}/{s["name"]}: exactly one of uses/run");
            });
        });
        Assert.All(Steps(workflow).Select(s => (string?)s["uses"]).OfType<string>(), uses => Assert.Matches(@"^[\w.-]+/[\w.-]+@v\d+$", uses));
    }

    [Fact]
    public void BuildAndTestRunsTheRepositoryTestScriptOnPushesAndPullRequests()
    {
        var workflow = Workflow("ci.yml");
        var job = workflow["jobs"]!["build-and-test"]!.AsObject();

        Assert.True(workflow["on"]!.AsObject().ContainsKey("pull_request"));
        Assert.Contains("main", workflow["on"]!["push"]!["branches"]!.AsArray().Select(b => (string?)b));
        Assert.Contains(job["steps"]!.AsArray(), s => (string?)s!["run"] == "./test.sh");
        Assert.Contains(job["steps"]!.AsArray(), s => ((string?)s!["uses"])?.StartsWith("actions/checkout@") == true);
        Assert.True(File.Exists(Repo.PathOf("test.sh")), "ci.yml runs ./test.sh, which must exist");
    }

    [Theory]
    [MemberData(nameof(Workflows))]
    public void ImagesArePushedOnlyFromVersionTags(string name)
    {
        var workflow = Workflow(name);
        var pushes = Steps(workflow).Where(s => ((string?)s["uses"])?.StartsWith("docker/build-push-action@") == true
            && s["with"]?["push"] is JsonNode push && push.ToString() != "false").ToList();
        var triggers = workflow["on"]!.AsObject();

        if (pushes.Count == 0)
        {
            Assert.DoesNotContain(Steps(workflow), s => ((string?)s["run"])?.Contains("docker push") == true);
            return;
        }

        Assert.Equal(["push"], triggers.Select(t => t.Key));
        Assert.Null(triggers["push"]!["branches"]);
        Assert.All(triggers["push"]!["tags"]!.AsArray(), t => Assert.StartsWith("v", (string?)t));
        Assert.Equal("write", (string?)workflow["permissions"]!["packages"]);
    }

    [Fact]
    public void ContinuousIntegrationBuildsAndSmokeTestsTheImageWithoutPushing()
    {
        var image = Workflow("ci.yml")["jobs"]!["image"]!["steps"]!.AsArray().Select(s => s!.AsObject()).ToList();

        var build = image.Single(s => ((string?)s["uses"])?.StartsWith("docker/build-push-action@") == true);
        Assert.False((bool?)build["with"]!["push"]);
        Assert.Contains(image, s => ((string?)s["run"])?.Contains("Health.Status") == true);
        Assert.Contains(image, s => ((string?)s["run"])?.Contains("docker compose -f deployment/docker-compose.ha.yml config") == true);
    }

    [Fact]
    public void ContinuousIntegrationDeploysTheHaStackAndRestartsItRollingly()
    {
        var job = Workflow("ci.yml")["jobs"]!["compose-ha"]!.AsObject();
        var runs = job["steps"]!.AsArray().Select(s => (string?)s!["run"]).OfType<string>().ToList();

        Assert.Equal("image", (string?)job["needs"]);
        Assert.Contains(runs, r => r.Contains("deployment/scripts/deploy-ha.sh --platform docker-compose --replicas 3") && !r.Contains("--rolling-restart"));
        Assert.Contains(runs, r => r.Contains("deployment/scripts/health-check.sh --platform docker-compose"));
        Assert.Contains(runs, r => r.Contains("--rolling-restart"));
        Assert.Contains(runs, r => r.Contains("--down"));
    }

    [Fact]
    public void DeployWorkflowUsesTheDeploymentScripts()
    {
        var workflow = Workflow("deploy.yml");
        var runs = Steps(workflow).Select(s => (string?)s["run"]).OfType<string>().ToList();
        var platforms = workflow["on"]!["workflow_dispatch"]!["inputs"]!["platform"]!["options"]!.AsArray().Select(o => (string?)o).ToList();

        Assert.Equal(["kubernetes", "docker-compose"], platforms);
        Assert.Contains(runs, r => r.Contains("deployment/scripts/deploy-ha.sh \"${args[@]}\""));
        Assert.Contains(runs, r => r.Contains("deployment/scripts/deploy-ha.sh --platform") && r.Contains("--rolling-restart"));
        Assert.Contains(runs, r => r.Contains("deployment/scripts/health-check.sh --platform"));
        Assert.Equal("production", (string?)workflow["jobs"]!["deploy"]!["environment"]);
        Assert.Contains(runs, r => r.Contains("delete job jackcwf-migrate"));
    }
}
