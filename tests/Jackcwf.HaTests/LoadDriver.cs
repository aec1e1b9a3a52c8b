using System.Collections.Concurrent;
using System.Diagnostics;

namespace Jackcwf.HaTests;

/// <summary>One logical client operation (all of its retries included).</summary>
public sealed record Operation(string Kind, TimeSpan Start, TimeSpan Latency, bool Failed, string? Error);

/// <summary>
/// A steady mix of traffic through the balancer: each worker owns a conversation and loops over
/// chats (SSE, 60 %; with <c>jsonChats</c> every other chat waits for a JSON answer instead),
/// resumes of an earlier answer from a random offset (20 %) and conversation reads (20 %). Chats are
/// the only writes; every one is recorded for the database checks.
/// </summary>
public sealed class LoadDriver : IAsyncDisposable
{
    private readonly List<(HaClient Client, Guid Conversation)> _workers;
    private readonly ConcurrentBag<Operation> _operations = [];
    private readonly ConcurrentBag<ChatOutcome> _chats = [];
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly CancellationTokenSource _stop = new();
    private readonly int _words;
    private bool _jsonChats;
    private int _sequence;
    private List<Task> _running = [];

    private LoadDriver(List<(HaClient, Guid)> workers, int words)
    {
        _workers = workers;
        _words = words;
    }

    public IReadOnlyCollection<Operation> Operations => _operations;

    public IReadOnlyCollection<ChatOutcome> Chats => _chats;

    public TimeSpan Now => _clock.Elapsed;

    public int Requests => _workers.Sum(w => w.Client.Requests);

    /// <summary>Every HTTP attempt that failed (5xx or no answer), when it started, across all clients.</summary>
    public IReadOnlyList<(TimeSpan At, string What)> FailedAttempts =>
        _workers.SelectMany(w => w.Client.FailedAttempts).Select(f => (f.At - _started, f.What)).OrderBy(f => f.Item1).ToList();

    private readonly DateTime _started = DateTime.UtcNow;

    /// <summary>Signs <paramref name="workers"/> users in through the balancer, each with a conversation.</summary>
    public static async Task<LoadDriver> CreateAsync(IHaTarget cluster, int workers, int words = 30, bool retryServerErrors = false, bool jsonChats = false)
    {
        var list = new List<(HaClient, Guid)>();
        for (var i = 0; i < workers; i++)
        {
            var (client, _, _) = await HaClient.RegisterAsync(cluster.CreateClient());
            client.RetryServerErrors = retryServerErrors;
            list.Add((client, await client.CreateConversationAsync()));
        }
        return new LoadDriver(list, words) { _jsonChats = jsonChats };
    }

    /// <summary>Lets clients also retry 500 answers (while the database itself is down).</summary>
    public void RetryServerErrors(bool on)
    {
        foreach (var (client, _) in _workers)
        {
            client.RetryServerErrors = on;
        }
    }

    public void Start() => _running = _workers.Select(w => Task.Run(() => WorkAsync(w.Client, w.Conversation))).ToList();

    /// <summary>Stops starting operations and waits for the ones in flight to end.</summary>
    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_running);
    }

    /// <summary>A test that failed half-way must not leave its clients running into the next test.</summary>
    public async ValueTask DisposeAsync() => await StopAsync();

    /// <summary>A distinct sentence per chat, so every message can be found in the database.</summary>
    public string NextSentence()
    {
        var n = Interlocked.Increment(ref _sequence);
        return $"m{n:D5} " + string.Join(' ', Enumerable.Range(1, _words - 1).Select(i => $"w{n}x{i}"));
    }

    private async Task WorkAsync(HaClient client, Guid conversation)
    {
        var random = new Random(conversation.GetHashCode());
        var mine = new List<ChatOutcome>();
        while (!_stop.IsCancellationRequested)
        {
            var roll = random.Next(100);
            var started = Now;
            try
            {
                if (roll < 60 || mine.Count == 0)
                {
                    var outcome = _jsonChats && roll % 2 == 0
                        ? await client.ChatJsonAsync(conversation, NextSentence())
                        : await client.ChatAsync(conversation, NextSentence());
                    _chats.Add(outcome);
                    mine.Add(outcome);
                    // Latency of a chat is its time to first token, retries included.
                    _operations.Add(new("chat", started, outcome.FirstDelta ?? outcome.Duration, !outcome.Completed && outcome.FinalStatus != "interrupted", outcome.Error ?? (outcome.Completed ? null : $"ended with {outcome.FinalType}")));
                }
                else if (roll < 80)
                {
                    var done = mine.Where(c => c is { AssistantId: not null, FinalType: "done" }).ToList();
                    if (done.Count == 0)
                    {
                        continue;
                    }
                    var pick = done[random.Next(done.Count)];
                    var text = pick.FinalContent ?? "";
                    var offset = random.Next(text.Length + 1);
                    var (rest, final, took) = await client.ResumeAsync(conversation, pick.AssistantId!.Value, offset);
                    var ok = final == "done" && rest == text[offset..];
                    _operations.Add(new("resume", started, took, !ok, ok ? null : $"resume from {offset} gave \"{rest}\" and {final}"));
                }
                else
                {
                    var took = await client.ReadConversationAsync(conversation);
                    _operations.Add(new("read", started, took, false, null));
                }
            }
            catch (Exception e) when (e is HttpRequestException or TimeoutException or IOException or TaskCanceledException)
            {
                _operations.Add(new(roll < 60 ? "chat" : roll < 80 ? "resume" : "read", started, Now - started, true, e.Message));
            }
        }
    }
}

/// <summary>The figures a test prints and appends to <c>.test-run/ha-results.md</c>.</summary>
public static class Figures
{
    public static double Percentile(IEnumerable<TimeSpan> values, double p)
    {
        var sorted = values.Select(v => v.TotalMilliseconds).Order().ToArray();
        if (sorted.Length == 0)
        {
            return 0;
        }
        var index = (int)Math.Ceiling(p / 100.0 * sorted.Length) - 1;
        return sorted[Math.Clamp(index, 0, sorted.Length - 1)];
    }

    /// <summary>Writes the lines to the test output and appends them, under the test's name, to the results file.</summary>
    public static void Report(ITestOutputHelper output, string test, IEnumerable<string> lines)
    {
        var list = lines.ToList();
        foreach (var line in list)
        {
            output.WriteLine(line);
        }
        try
        {
            var dir = Path.Combine(Jackcwf.Testing.RepoPaths.Root, ".test-run");
            Directory.CreateDirectory(dir);
            File.AppendAllText(Path.Combine(dir, "ha-results.md"),
                $"\n## {test} ({DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC)\n\n" + string.Join("\n", list.Select(l => "- " + l)) + "\n");
        }
        catch (IOException e)
        {
            output.WriteLine($"(results file not written: {e.Message})");
        }
    }

    /// <summary>Requests, failures and latency of the operations that started inside [from, to).</summary>
    public static IEnumerable<string> Window(string label, IEnumerable<Operation> operations, TimeSpan from, TimeSpan to)
    {
        var inside = operations.Where(o => o.Start >= from && o.Start < to).ToList();
        yield return $"{label}: {inside.Count} operations ({inside.Count(o => o.Kind == "chat")} chats, {inside.Count(o => o.Kind == "resume")} resumes, {inside.Count(o => o.Kind == "read")} reads), {inside.Count(o => o.Failed)} failed";
        foreach (var kind in new[] { "chat", "resume", "read" })
        {
            var l = inside.Where(o => o.Kind == kind && !o.Failed).Select(o => o.Latency).ToList();
            if (l.Count > 0)
            {
                yield return $"{label}: {kind} latency p50 {Percentile(l, 50):F0} ms, p99 {Percentile(l, 99):F0} ms, max {l.Max().TotalMilliseconds:F0} ms{(kind == "chat" ? " (time to first token)" : "")}";
            }
        }
    }
}
