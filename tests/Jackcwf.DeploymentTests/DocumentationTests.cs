using System.Text.RegularExpressions;
using Jackcwf.DeploymentTests.Infrastructure;

namespace Jackcwf.DeploymentTests;

/// <summary>The deployment guides: the seed's sections are there and every link leads somewhere.</summary>
public sealed partial class DocumentationTests
{
    private const string Guide = "docs/deployment/HA_DEPLOYMENT_GUIDE.md";
    private const string Recovery = "docs/deployment/DEPLOYMENT_RECOVERY_GUIDE.md";

    public static TheoryData<string> Guides => [Guide, Recovery];

    [Fact]
    public void GuideCoversComposeKubernetesTheChecklistRollbackAndLocalReplicas()
    {
        var headings = Headings(Read(Guide));

        string[] expected =
        [
            "What was validated, and how", "3. High availability with Docker Compose and Traefik", "4. Kubernetes",
            "Local multi-replica (no containers)", "Deployment checklist", "Rollback procedure",
        ];
        Assert.All(expected, h => Assert.Contains(h, headings));
        var local = Section(Read(Guide), "Local multi-replica (no containers)");
        Assert.Contains("](local-ha.md)", local);
    }

    [Fact]
    public void GuideSaysPlainlyWhatWasOnlyValidatedStatically()
    {
        var section = Section(Read(Guide), "What was validated, and how");

        Assert.Contains("no Docker engine, no Kubernetes cluster", section);
        Assert.Contains("no Traefik binary", section);
        Assert.Contains("statically", section);
    }

    [Fact]
    public void ChecklistHoldsEveryItemOfTheSeed()
    {
        var checklist = Section(Read(Guide), "Deployment checklist");
        string[] seed =
        [
            "Review and update `.env` file", "Build the Docker image", "Test single container deployment",
            "Deploy HA stack (3 replicas)", "Verify health checks", "Deploy monitoring stack", "Configure alerts",
            "Set up backups", "Document rollback procedure", "Load test deployment",
        ];

        Assert.All(seed, item => Assert.Contains($"**{item}**", checklist));
        Assert.True(Regex.Matches(checklist, @"^- \[ \] ", RegexOptions.Multiline).Count >= seed.Length);
    }

    [Fact]
    public void RecoveryGuideExtendsTheSeedsTroubleshooting()
    {
        var headings = Headings(Read(Recovery));

        Assert.Contains("1. Containers not starting", headings);
        Assert.Contains("2. Database connection errors", headings);
        Assert.Contains("3. Load balancer not working", headings);
        Assert.Contains("Extended troubleshooting", headings);
        Assert.True(headings.Count >= 15, "the seed's three issues plus the HA-specific ones");
    }

    [Theory]
    [MemberData(nameof(Guides))]
    public void EveryRelativeLinkPointsToAnExistingFileAndHeading(string guide)
    {
        var text = Read(guide);
        var folder = Path.GetDirectoryName(Repo.PathOf(guide.Split('/')))!;
        var links = Link().Matches(text).Select(m => m.Groups[1].Value).Where(l => !l.StartsWith("http", StringComparison.Ordinal)).ToList();

        Assert.NotEmpty(links);
        Assert.All(links, link =>
        {
            var (path, anchor) = link.Split('#') is [var p, var a] ? (p, a) : (link, null);
            var target = path.Length == 0 ? Repo.PathOf(guide.Split('/')) : Path.GetFullPath(Path.Combine(folder, path));
            Assert.True(File.Exists(target) || Directory.Exists(target), $"{guide}: link {link} leads nowhere");
            if (anchor is not null)
                Assert.Contains(anchor, Headings(File.ReadAllText(target)).Select(Slug));
        });
    }

    [Theory]
    [MemberData(nameof(Guides))]
    public void CommandsNameOnlyFilesThatExist(string guide)
    {
        var paths = RepoPath().Matches(Read(guide)).Select(m => m.Value.TrimEnd('.', ',', ':', ')'))
            // "deployment/<name>" without a folder or extension is a kubectl resource reference, and
            // the guide shows how to create the overlay "production" (it does not exist until then).
            .Where(p => !KubectlDeployment().IsMatch(p) && !p.StartsWith("deployment/kubernetes/overlays/production/", StringComparison.Ordinal))
            .Distinct().ToList();

        Assert.NotEmpty(paths);
        Assert.All(paths, p => Assert.True(File.Exists(Repo.PathOf(p.Split('/'))) || Directory.Exists(Repo.PathOf(p.Split('/'))), $"{guide} mentions {p}, which does not exist"));
    }

    private static string Read(string path) => Repo.Read(path.Split('/'));

    private static List<string> Headings(string markdown) =>
        markdown.Split('\n').Where(l => l.StartsWith('#')).Select(l => l.TrimStart('#').Trim()).ToList();

    private static string Section(string markdown, string heading)
    {
        var lines = markdown.Split('\n');
        var start = Array.FindIndex(lines, l => l.StartsWith('#') && l.TrimStart('#').Trim() == heading);
        Assert.True(start >= 0, $"no section '{heading}'");
        var level = lines[start].TakeWhile(c => c == '#').Count();
        var end = Array.FindIndex(lines, start + 1, l => l.StartsWith('#') && l.TakeWhile(c => c == '#').Count() <= level && !l.StartsWith(new string('#', level + 1)));
        return string.Join('\n', lines[start..(end < 0 ? lines.Length : end)]);
    }

    // GitHub's heading anchors: lower case, punctuation removed, spaces to hyphens.
    private static string Slug(string heading) =>
        Regex.Replace(heading.ToLowerInvariant(), @"[^\w\- ]", "").Replace(' ', '-');

    [GeneratedRegex(@"\]\(([^)\s]+)\)")]
    private static partial Regex Link();

    [GeneratedRegex(@"^deployment/[\w-]+$")]
    private static partial Regex KubectlDeployment();

    [GeneratedRegex(@"(?<![\w/.-])(?:deployment|docs|\.github)/[\w./-]*[\w]")]
    private static partial Regex RepoPath();
}
