using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Jackcwf.Testing;

namespace Jackcwf.HaTests;

/// <summary>The built load balancer (<c>src/Jackcwf.LoadBalancer</c>) as a process in front of the replicas.</summary>
public sealed class BalancerProcess : IAsyncDisposable
{
    private readonly LogCapture _log = new();
    private Process? _process;

    private BalancerProcess(int port) => BaseUrl = new Uri($"http://127.0.0.1:{port}/");

    public Uri BaseUrl { get; }

    public string Logs => _log.Text;

    /// <summary><c>JACKCWF_LB_DLL</c>, else the Release build in <c>src/Jackcwf.LoadBalancer</c>.</summary>
    public static string Dll
    {
        get
        {
            var fromEnvironment = Environment.GetEnvironmentVariable("JACKCWF_LB_DLL");
            return string.IsNullOrWhiteSpace(fromEnvironment)
                ? Path.Combine(RepoPaths.Root, "src", "Jackcwf.LoadBalancer", "bin", "Release", "net10.0", "Jackcwf.LoadBalancer.dll")
                : Path.GetFullPath(fromEnvironment);
        }
    }

    /// <summary>
    /// Starts the balancer with its documented options (<c>LB_BACKENDS</c>) and waits until it routes
    /// to every backend. The active health check runs every second, so a draining replica (503 on
    /// <c>/health/ready</c>) leaves the rotation within the service's drain delay.
    /// </summary>
    public static async Task<BalancerProcess> StartAsync(IEnumerable<Uri> backends)
    {
        var dll = Dll;
        if (!File.Exists(dll))
        {
            throw new FileNotFoundException(
                $"The load balancer is not built: {dll} does not exist. Run ./test.sh, or `dotnet build -c Release src/Jackcwf.LoadBalancer` (or set JACKCWF_LB_DLL).", dll);
        }
        var list = backends.ToList();
        var balancer = new BalancerProcess(FreePort.GetReusable());
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(dll);
        start.ArgumentList.Add("--ReverseProxy:Clusters:jackcwf:HealthCheck:Active:Interval=00:00:01");
        start.Environment["ASPNETCORE_URLS"] = $"http://127.0.0.1:{balancer.BaseUrl.Port}";
        start.Environment["LB_BACKENDS"] = string.Join(",", list.Select(b => b.ToString().TrimEnd('/')));
        start.Environment["DOTNET_gcServer"] = "0";
        var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { balancer._log.Add(e.Data); } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { balancer._log.Add(e.Data); } };
        process.Start();
        balancer._process = process;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await balancer.WaitForHealthyAsync(list.Count, TimeSpan.FromSeconds(60));
        }
        catch
        {
            await balancer.DisposeAsync();
            throw;
        }
        return balancer;
    }

    /// <summary>Waits until the balancer reports <paramref name="count"/> healthy destinations.</summary>
    public async Task WaitForHealthyAsync(int count, TimeSpan timeout)
    {
        using var http = new HttpClient { BaseAddress = BaseUrl, Timeout = TimeSpan.FromSeconds(5) };
        var stopwatch = Stopwatch.StartNew();
        var last = "no answer";
        while (stopwatch.Elapsed < timeout)
        {
            if (_process is { HasExited: true } p)
            {
                throw new InvalidOperationException($"The load balancer exited with code {p.ExitCode}:\n{Logs}");
            }
            try
            {
                using var response = await http.GetAsync("lb/health");
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
                    var healthy = json.RootElement.GetProperty("healthyDestinations").GetInt32();
                    if (healthy >= count)
                    {
                        return;
                    }
                    last = $"{healthy} healthy";
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                last = e.Message;
            }
            await Task.Delay(200);
        }
        throw new TimeoutException($"The load balancer did not see {count} healthy replicas within {timeout} (last: {last}):\n{Logs}");
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is { } p)
        {
            try
            {
                if (!p.HasExited)
                {
                    p.Kill();
                }
                await p.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token);
            }
            catch (Exception e) when (e is InvalidOperationException or OperationCanceledException)
            {
                // Already gone, or the output readers are still draining.
            }
            p.Dispose();
        }
    }
}
