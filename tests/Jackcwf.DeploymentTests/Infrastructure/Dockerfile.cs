namespace Jackcwf.DeploymentTests.Infrastructure;

/// <summary>A small Dockerfile reader: instructions with continuation lines joined, comments dropped.</summary>
public sealed record DockerInstruction(string Keyword, string Arguments, string Stage);

public static class Dockerfile
{
    public static IReadOnlyList<DockerInstruction> Instructions(string text)
    {
        var result = new List<DockerInstruction>();
        var stage = "";
        var pending = "";
        foreach (var raw in text.ReplaceLineEndings("\n").Split('\n'))
        {
            var line = raw.Trim();
            if (pending.Length == 0 && (line.Length == 0 || line.StartsWith('#'))) continue;
            if (line.StartsWith('#')) continue;
            if (line.EndsWith('\\'))
            {
                pending += line[..^1].Trim() + " ";
                continue;
            }
            var full = (pending + line).Trim();
            pending = "";
            var space = full.IndexOf(' ');
            var keyword = full[..space].ToUpperInvariant();
            var arguments = full[(space + 1)..].Trim();
            if (keyword == "FROM")
            {
                var parts = arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                stage = parts.Length >= 3 && parts[^2].Equals("AS", StringComparison.OrdinalIgnoreCase) ? parts[^1] : parts[0];
            }
            result.Add(new DockerInstruction(keyword, arguments, stage));
        }
        return result;
    }
}
