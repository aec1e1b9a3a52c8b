using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Jackcwf.MonitoringTests.Infrastructure;
using Jackcwf.Testing;

namespace Jackcwf.MonitoringTests.Live;

/// <summary>A real Prometheus on 127.0.0.1 scraping one target every second and evaluating the given rule files.</summary>
public sealed class PrometheusServer : IAsyncDisposable
{
    private readonly Process _process;
    private readonly DirectoryInfo _folder;
    private readonly LogCapture _log;

    private PrometheusServer(Process process, DirectoryInfo folder, LogCapture log, Uri baseUrl)
    {
        _process = process;
        _folder = folder;
        _log = log;
        Http = new HttpClient { BaseAddress = baseUrl, Timeout = TimeSpan.FromSeconds(15) };
    }

    public HttpClient Http { get; }

    public string Logs => _log.Text;

    /// <summary>Starts Prometheus with a job named <c>jackcwf</c> scraping <paramref name="target"/> (host:port) every second.</summary>
    public static async Task<PrometheusServer> StartAsync(string target, IReadOnlyList<string> ruleFiles)
    {
        var binary = Tool.Require("prometheus");
        var folder = Directory.CreateTempSubdirectory("jackcwf-prometheus-");
        var config = Path.Combine(folder.FullName, "prometheus.yml");
        var rules = string.Concat(ruleFiles.Select(f => $"  - {f}\n"));
        await File.WriteAllTextAsync(config, $"""
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
              scrape_timeout: 1s
            rule_files:
            {rules}scrape_configs:
              - job_name: jackcwf
                static_configs:
                  - targets: ["{target}"]
            """);

        var port = FreePort.Get();
        var start = new ProcessStartInfo(binary)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = folder.FullName,
        };
        foreach (var argument in new[]
                 {
                     $"--config.file={config}", $"--storage.tsdb.path={Path.Combine(folder.FullName, "data")}",
                     $"--web.listen-address=127.0.0.1:{port}",
                 })
        {
            start.ArgumentList.Add(argument);
        }

        var log = new LogCapture();
        var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { log.Add(e.Data); } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { log.Add(e.Data); } };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new PrometheusServer(process, folder, log, new Uri($"http://127.0.0.1:{port}/"));
        try
        {
            await server.WaitReadyAsync();
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>Runs an instant query; fails with Prometheus' error message when the query is rejected.</summary>
    public async Task<JsonArray> QueryAsync(string expr)
    {
        using var response = await Http.PostAsync("api/v1/query", new FormUrlEncodedContent([KeyValuePair.Create("query", expr)]));
        var body = await response.Content.ReadFromJsonAsync<JsonObject>();
        if ((string?)body?["status"] != "success")
        {
            throw new InvalidOperationException($"Prometheus rejected `{expr}`: {body?.ToJsonString()}");
        }

        return body!["data"]!["result"]!.AsArray();
    }

    /// <summary>The value of a query that returns one series (for example a <c>sum(...)</c>), or null when it returns none.</summary>
    public async Task<double?> ValueAsync(string expr)
    {
        var result = await QueryAsync(expr);
        return result.Count switch
        {
            0 => null,
            1 => double.Parse((string)result[0]!["value"]![1]!, System.Globalization.CultureInfo.InvariantCulture),
            _ => throw new InvalidOperationException($"`{expr}` returned {result.Count} series: {result.ToJsonString()}"),
        };
    }

    /// <summary>Polls <paramref name="expr"/> until <paramref name="accept"/> holds (scrapes and rule evaluations are asynchronous); returns the last value.</summary>
    public async Task<double?> EventuallyAsync(string expr, Func<double?, bool> accept, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(20));
        double? value;
        do
        {
            value = await ValueAsync(expr);
            if (accept(value))
            {
                return value;
            }

            await Task.Delay(250);
        }
        while (DateTime.UtcNow < deadline);

        return value;
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        try
        {
            if (!_process.HasExited)
            {
                // Stopped by its own PID, never by name: other Prometheus processes may run here.
                _process.Kill();
            }

            await _process.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token);
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
        catch (OperationCanceledException)
        {
            // Did not exit in time after SIGKILL; nothing more to do.
        }

        _process.Dispose();
        try
        {
            _folder.Delete(recursive: true);
        }
        catch (IOException)
        {
            // TSDB files still being released; the temp folder is cleaned by the OS eventually.
        }
    }

    private async Task WaitReadyAsync()
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"Prometheus exited with {_process.ExitCode}:\n{_log.Text}");
            }

            try
            {
                using var response = await Http.GetAsync("-/ready");
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            catch (TaskCanceledException)
            {
                // Slow start on a busy machine.
            }

            await Task.Delay(200);
        }

        throw new TimeoutException("Prometheus was not ready within 60 s:\n" + _log.Text);
    }
}
