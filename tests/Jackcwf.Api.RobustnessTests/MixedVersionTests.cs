using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Jackcwf.Api.RobustnessTests.Infrastructure;

namespace Jackcwf.Api.RobustnessTests;

/// <summary>
/// Expand/contract in practice (docs/schema-changes.md): the release before the newest migration
/// keeps serving while the newest binary migrates the same PostgreSQL and serves beside it; both
/// answer every request. The old release is built from this repository's history.
/// </summary>
public sealed class MixedVersionTests
{
    private const string Migrations = "src/Jackcwf.Api/Data/Migrations";

    [Fact]
    public async Task Previous_release_keeps_serving_while_the_newest_migrates_and_serves_beside_it_with_no_failed_request()
    {
        var ct = TestContext.Current.CancellationToken;
        var (newest, previous) = await FindCommitsAsync(ct);
        var oldDll = await BuildAsync(previous, ct);
        await using var db = await TestPostgres.CreateDatabaseAsync("mixed", ct);
        var env = new Dictionary<string, string?> { ["DATABASE_URL"] = db.Url, ["DEMO_CHUNK_DELAY_MS"] = "0" };

        await using var old = await ApiProcess.StartAsync(new ApiProcessOptions
        {
            Port = Ports.Next(), DllPath = oldDll, Environment = Defaults(env), ReadyTimeout = TimeSpan.FromSeconds(180),
        }, ct);
        using var user = await TestUser.SignUpAsync(old);
        var failures = new ConcurrentQueue<string>();
        var served = new ConcurrentDictionary<string, int>();
        using var stop = new CancellationTokenSource();
        var oldLoad = LoadAsync("old", old, user, failures, served, stop.Token);

        // The newest binary migrates the database the old release is serving from.
        var migrate = await Service.RunCommandAsync(["migrate"], env);
        Assert.True(migrate.ExitCode == 0, $"migrate (newest) exited {migrate.ExitCode}:\n{migrate.Output}");
        Assert.Contains("Applying", migrate.Output, StringComparison.Ordinal);
        var oldAfterMigration = served.GetValueOrDefault("old");

        await using var current = await Service.StartAsync(new Dictionary<string, string?>(env) { ["MIGRATE_ON_STARTUP"] = "false" });
        var newLoad = LoadAsync("new", current, user, failures, served, stop.Token);
        // Both serve side by side for a while: enough exchanges on each to cover every route of the loop.
        while (!ct.IsCancellationRequested && (served.GetValueOrDefault("new") < 15 || served.GetValueOrDefault("old") < oldAfterMigration + 15)
            && !oldLoad.IsCompleted && !newLoad.IsCompleted)
        {
            await Task.Delay(100, ct);
        }
        await stop.CancelAsync();
        await Task.WhenAll(oldLoad, newLoad);

        var summary = $"mixed versions: old release {previous[..8]} served {served.GetValueOrDefault("old")} loops ({served.GetValueOrDefault("old") - oldAfterMigration} after the migration), "
            + $"newest ({newest[..8]}'s migration) served {served.GetValueOrDefault("new")}; {failures.Count} failed";
        TestContext.Current.SendDiagnosticMessage(summary);
        Assert.True(failures.IsEmpty, $"{summary}\n{string.Join('\n', failures.Take(10))}");
    }

    private static Dictionary<string, string?> Defaults(Dictionary<string, string?> env) => new(env)
    {
        ["REDIS_URL"] = null,
        ["ENABLE_MONITORING"] = "false",
        ["RATE_LIMIT_USER_PER_MINUTE"] = "1000000",
        ["MAX_CONCURRENT_GENERATIONS"] = "1000",
    };

    /// <summary>
    /// One user's everyday loop against one version: create a conversation, chat, read it back,
    /// list conversations, and read one written by the other version. Every non-success is a failure.
    /// </summary>
    private static Task LoadAsync(string name, ApiProcess api, TestUser user, ConcurrentQueue<string> failures,
        ConcurrentDictionary<string, int> served, CancellationToken stop) => Task.Run(async () =>
    {
        using var client = api.CreateClient();
        client.DefaultRequestHeaders.Authorization = user.Client.DefaultRequestHeaders.Authorization;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                using var created = await client.PostAsJsonAsync("api/conversations", new { title = $"{name} loop" }, CancellationToken.None);
                Check(created, HttpStatusCode.Created);
                var id = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
                using var chat = await client.PostAsJsonAsync($"api/conversations/{id}/messages", new { content = $"hello from {name}" }, CancellationToken.None);
                Check(chat, HttpStatusCode.OK);
                using var read = await client.GetAsync($"api/conversations/{id}", CancellationToken.None);
                Check(read, HttpStatusCode.OK);
                using var list = await client.GetAsync("api/conversations?limit=5", CancellationToken.None);
                Check(list, HttpStatusCode.OK);
                foreach (var item in (await list.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("items").EnumerateArray())
                {
                    using var other = await client.GetAsync($"api/conversations/{item.GetProperty("id").GetGuid()}", CancellationToken.None);
                    Check(other, HttpStatusCode.OK);
                }
                served.AddOrUpdate(name, 1, (_, n) => n + 1);
            }
            catch (Exception e) when (e is HttpRequestException or InvalidOperationException or TaskCanceledException or JsonException)
            {
                failures.Enqueue($"{name}: {e.Message}");
            }
        }
    });

    private static void Check(HttpResponseMessage response, HttpStatusCode expected)
    {
        if (response.StatusCode != expected)
        {
            throw new InvalidOperationException($"{response.RequestMessage?.Method} {response.RequestMessage?.RequestUri?.PathAndQuery} answered {(int)response.StatusCode}: {response.Content.ReadAsStringAsync().Result}");
        }
    }

    /// <summary>
    /// The release before the newest schema change: walking main's first-parent history back from
    /// HEAD, the newest commit whose migrations are a strict subset of HEAD's (branches merged into
    /// main may carry migrations that were re-created under another id before landing, so "the parent
    /// of the last commit that touched the folder" is not always a release of main), and the commit
    /// after it on that line.
    /// </summary>
    private static async Task<(string Newest, string Previous)> FindCommitsAsync(CancellationToken ct)
    {
        var chain = (await GitAsync(ct, "rev-list", "--first-parent", "--max-count=1000", "HEAD"))
            .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.True(chain.Length > 1, "git rev-list found no history (a shallow clone? fetch the history: git fetch --unshallow)");
        var current = await MigrationIdsAsync(chain[0], ct);
        var newer = chain[0];
        foreach (var commit in chain.Skip(1))
        {
            var ids = await MigrationIdsAsync(commit, ct);
            if (ids.IsProperSubsetOf(current))
            {
                return (newer, commit);
            }
            newer = commit;
        }
        Assert.Fail($"no earlier commit on main's first-parent line has a subset of the migrations of HEAD");
        return default;
    }

    private static async Task<HashSet<string>> MigrationIdsAsync(string commit, CancellationToken ct)
    {
        var names = await GitAsync(ct, "ls-tree", "--name-only", commit, Migrations + "/PostgreSql/");
        return names.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(Path.GetFileName)
            .Where(n => n!.EndsWith(".cs", StringComparison.Ordinal) && !n.EndsWith(".Designer.cs", StringComparison.Ordinal) && !n.Contains("ModelSnapshot", StringComparison.Ordinal))
            .Select(n => n!)
            .ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>
    /// Builds only src/Jackcwf.Api of <paramref name="commit"/> from a detached git worktree (the
    /// NuGet cache is shared); the output is kept per commit so a second run reuses it.
    /// </summary>
    private static async Task<string> BuildAsync(string commit, CancellationToken ct)
    {
        var output = Path.Combine(Path.GetTempPath(), $"jackcwf-release-{commit[..12]}");
        var dll = Path.Combine(output, "Jackcwf.Api.dll");
        if (File.Exists(dll))
        {
            return dll;
        }
        var worktree = Path.Combine(Path.GetTempPath(), $"jackcwf-worktree-{Guid.NewGuid():N}");
        await GitAsync(ct, "worktree", "add", "--detach", worktree, commit);
        try
        {
            var (code, log) = await RunAsync("dotnet", ["build", Path.Combine(worktree, "src", "Jackcwf.Api"), "-c", "Release", "-o", output + ".partial", "-nologo", "-v", "q", "-clp:ErrorsOnly"], RepoPaths.Root, ct);
            Assert.True(code == 0, $"building {commit[..12]} failed:\n{log}");
            if (Directory.Exists(output))
            {
                Directory.Delete(output, recursive: true);
            }
            Directory.Move(output + ".partial", output);
        }
        finally
        {
            await GitAsync(ct, "worktree", "remove", "--force", worktree);
        }
        return dll;
    }

    private static async Task<string> GitAsync(CancellationToken ct, params string[] args)
    {
        var (code, output) = await RunAsync("git", ["-C", RepoPaths.Root, .. args], RepoPaths.Root, ct);
        Assert.True(code == 0, $"git {string.Join(' ', args)} failed:\n{output}");
        return output;
    }

    private static Task<(int ExitCode, string Output)> RunAsync(string file, string[] args, string workingDirectory, CancellationToken ct) =>
        ExternalCommand.RunAsync(file, args, Timeout.InfiniteTimeSpan, ct, workingDirectory);
}
