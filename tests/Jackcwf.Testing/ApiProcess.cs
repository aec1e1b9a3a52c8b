using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;

namespace Jackcwf.Testing;

/// <summary>How <see cref="ApiProcess"/> starts the service.</summary>
public sealed record ApiProcessOptions
{
    /// <summary>Extra environment variables; they win over the defaults. A <c>null</c> value removes an inherited variable.</summary>
    public IReadOnlyDictionary<string, string?> Environment { get; init; } = new Dictionary<string, string?>();

    /// <summary>Port on 127.0.0.1; 0 picks a free port below the ephemeral range (kept across restarts).</summary>
    public int Port { get; init; }

    /// <summary>Working directory (the SQLite file lands in <c>./data</c> there); <c>null</c> creates a temp folder, deleted on dispose.</summary>
    public string? WorkingDirectory { get; init; }

    /// <summary>Wait until <c>/health/ready</c> answers 200 before <see cref="ApiProcess.StartAsync"/> returns.</summary>
    public bool WaitForReady { get; init; } = true;

    /// <summary>How long to wait for readiness.</summary>
    public TimeSpan ReadyTimeout { get; init; } = TimeSpan.FromSeconds(90);

    /// <summary>Command-line arguments after the dll.</summary>
    public IReadOnlyList<string> Arguments { get; init; } = [];

    /// <summary>The service dll; <c>null</c> means <see cref="RepoPaths.ApiDll"/>.</summary>
    public string? DllPath { get; init; }
}

/// <summary>Output and exit code of a finished service command such as <c>migrate</c>.</summary>
public sealed record ApiCommandResult(int ExitCode, string Output);

/// <summary>
/// The built service running as a separate <c>dotnet Jackcwf.Api.dll</c> process on 127.0.0.1, with its
/// output captured. Disposal kills it (use <see cref="StopAsync"/> to test graceful shutdown).
/// </summary>
public sealed class ApiProcess : IAsyncDisposable
{
    // Children must not outlive a crashed or aborted test run.
    private static readonly ConcurrentDictionary<ApiProcess, byte> Live = new();

    private readonly ApiProcessOptions _options;
    private readonly string _dll;
    private readonly bool _ownsWorkingDirectory;
    private readonly LogCapture _log = new();
    private Process? _process;

    static ApiProcess()
    {
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            foreach (var api in Live.Keys)
            {
                api.Kill();
            }
        };
    }

    private ApiProcess(ApiProcessOptions options, string dll)
    {
        _options = options;
        _dll = dll;
        Port = options.Port == 0 ? FreePort.GetReusable() : options.Port;
        _ownsWorkingDirectory = options.WorkingDirectory is null;
        WorkingDirectory = options.WorkingDirectory ?? Directory.CreateTempSubdirectory("jackcwf-api-").FullName;
        BaseUrl = new Uri($"http://127.0.0.1:{Port}/");
    }

    /// <summary>The DATA_PROTECTION_KEY every started service gets unless the test sets its own (32 bytes, base64).</summary>
    public const string TestDataProtectionKey = "dGVzdC1vbmx5LWRhdGEtcHJvdGVjdGlvbi1rZXktMzJi";

    /// <summary>Account throttles (AUTH_*) set so high that no suite reaches them by accident.</summary>
    public static readonly IReadOnlyDictionary<string, string> RelaxedAuthLimits = new Dictionary<string, string>
    {
        ["AUTH_RATE_LIMIT_PER_MINUTE"] = "1000000",
        ["AUTH_FAILED_SIGNINS_PER_IP"] = "100000",
        ["AUTH_FAILED_SIGNINS_PER_ACCOUNT"] = "1000000",
        ["AUTH_REGISTRATIONS_PER_HOUR"] = "1000000",
        ["AUTH_EMAILS_PER_HOUR"] = "1000000",
        ["API_KEY_FAILURES_PER_MINUTE"] = "1000000",
    };

    /// <summary><c>http://127.0.0.1:{port}/</c></summary>
    public Uri BaseUrl { get; }

    public int Port { get; }

    public string WorkingDirectory { get; }

    /// <summary>Process id of the running service (the dotnet host runs the app in-process).</summary>
    public int Pid => _process?.Id ?? throw new InvalidOperationException("The service is not running.");

    public bool HasExited => _process is null || _process.HasExited;

    /// <summary>Exit code of the last run, once it has exited.</summary>
    public int? ExitCode => _process is { HasExited: true } p ? p.ExitCode : null;

    /// <summary>Everything the process wrote to stdout and stderr, across restarts.</summary>
    public string Logs => _log.Text;

    public IReadOnlyList<string> LogLines => _log.Lines;

    public LogCapture Log => _log;

    /// <summary>Starts the service; with <see cref="ApiProcessOptions.WaitForReady"/> it returns once <c>/health/ready</c> is 200.</summary>
    public static async Task<ApiProcess> StartAsync(ApiProcessOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new ApiProcessOptions();
        var api = new ApiProcess(options, ResolveDll(options));
        try
        {
            await api.LaunchAsync(cancellationToken);
            return api;
        }
        catch
        {
            await api.DisposeAsync();
            throw;
        }
    }

    /// <summary>Runs a sub-command (<c>migrate</c>, <c>healthcheck url</c>, …) to completion; <paramref name="options"/> gives environment, working directory and dll.</summary>
    public static async Task<ApiCommandResult> RunCommandAsync(
        IReadOnlyList<string> arguments,
        ApiProcessOptions? options = null,
        TimeSpan? timeout = null,
        CancellationToken cancellationToken = default)
    {
        options = (options ?? new ApiProcessOptions()) with { Arguments = arguments, WaitForReady = false };
        await using var api = new ApiProcess(options, ResolveDll(options));
        await api.LaunchAsync(cancellationToken);
        var limit = timeout ?? TimeSpan.FromSeconds(120);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(limit);
        try
        {
            await api._process!.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"'{string.Join(' ', arguments)}' did not finish within {limit}. Output:\n{api.Logs}");
        }

        return new ApiCommandResult(api._process.ExitCode, api.Logs);
    }

    /// <summary>
    /// A client with <see cref="BaseUrl"/> as base address. The default handler keeps cookies (a login with
    /// <c>?useCookies=true</c> sticks to this client) and does not follow redirects.
    /// </summary>
    public HttpClient CreateClient(HttpMessageHandler? handler = null) =>
        new(handler ?? new SocketsHttpHandler { CookieContainer = new System.Net.CookieContainer(), AllowAutoRedirect = false })
        {
            BaseAddress = BaseUrl,
            Timeout = TimeSpan.FromSeconds(100),
        };

    public Task<string> WaitForLogAsync(string substring, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        _log.WaitForAsync(substring, timeout, cancellationToken);

    /// <summary>Polls <c>/health/ready</c> until it answers 200; fails with the captured logs if the process exits or time runs out.</summary>
    public async Task WaitForReadyAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var stopwatch = Stopwatch.StartNew();
        string last = "no answer yet";
        while (stopwatch.Elapsed < timeout)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (HasExited)
            {
                throw new InvalidOperationException(
                    $"The service exited with code {ExitCode} before it was ready. Output:\n{Logs}");
            }

            try
            {
                using var response = await http.GetAsync(new Uri(BaseUrl, "health/ready"), cancellationToken);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }

                last = $"HTTP {(int)response.StatusCode}";
            }
            catch (HttpRequestException e)
            {
                last = e.Message;
            }
            catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                last = "request timed out";
            }

            await Task.Delay(100, cancellationToken);
        }

        throw new TimeoutException($"The service at {BaseUrl} was not ready within {timeout} (last: {last}). Output:\n{Logs}");
    }

    /// <summary>Sends SIGTERM and waits for the exit; returns the exit code. On timeout the process is killed and a <see cref="TimeoutException"/> thrown.</summary>
    public async Task<int> StopAsync(TimeSpan timeout)
    {
        var process = _process ?? throw new InvalidOperationException("The service was never started.");
        if (!process.HasExited)
        {
            Signals.Send(process.Id, Signals.SigTerm);
        }

        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            Kill();
            throw new TimeoutException($"The service did not exit within {timeout} of SIGTERM; it was killed. Output:\n{Logs}");
        }
        finally
        {
            Live.TryRemove(this, out _);
        }

        return process.ExitCode;
    }

    /// <summary>SIGKILL, then waits until the process is gone (so its port is free).</summary>
    public void Kill()
    {
        var process = _process;
        if (process is null)
        {
            return;
        }

        try
        {
            if (!process.HasExited)
            {
                Signals.Send(process.Id, Signals.SigKill);
            }

            process.WaitForExit(TimeSpan.FromSeconds(10));
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }

        Live.TryRemove(this, out _);
    }

    /// <summary>Stops the service gracefully if it runs, then starts it again on the same port and working directory.</summary>
    public async Task RestartAsync(TimeSpan? stopTimeout = null, CancellationToken cancellationToken = default)
    {
        if (!HasExited)
        {
            await StopAsync(stopTimeout ?? TimeSpan.FromSeconds(60));
        }

        await LaunchAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        Kill();
        if (_process is not null)
        {
            // Let the output readers drain so no callback writes after disposal.
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            try
            {
                await _process.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                // The logs may be incomplete; nothing else depends on them now.
            }

            _process.Dispose();
        }

        if (_ownsWorkingDirectory)
        {
            try
            {
                Directory.Delete(WorkingDirectory, recursive: true);
            }
            catch (IOException)
            {
                // A file still being released; the temp folder is cleaned by the OS eventually.
            }
        }
    }

    private static string ResolveDll(ApiProcessOptions options)
    {
        var dll = options.DllPath ?? RepoPaths.ApiDll;
        if (!File.Exists(dll))
        {
            throw new FileNotFoundException(
                $"The service is not built: {dll} does not exist. Run ./test.sh, or `dotnet build -c Release src/Jackcwf.Api` from the repository root (or set JACKCWF_API_DLL to a built Jackcwf.Api.dll).",
                dll);
        }

        return dll;
    }

    private async Task LaunchAsync(CancellationToken cancellationToken)
    {
        _process?.Dispose();
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = WorkingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = false,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(_dll);
        foreach (var argument in _options.Arguments)
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["ASPNETCORE_URLS"] = $"http://127.0.0.1:{Port}";
        start.Environment["LOG_FORMAT"] = "json";
        start.Environment["DOTNET_gcServer"] = "0";
        start.Environment["DOTNET_NOLOGO"] = "1";
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        // The service runs in Production, where PostgreSQL needs the key that encrypts the Data Protection key ring.
        start.Environment["DATA_PROTECTION_KEY"] = TestDataProtectionKey;
        // Every test client signs in and registers from 127.0.0.1: lift the per-address account throttles,
        // which the suites that test them set low again.
        foreach (var (name, value) in RelaxedAuthLimits)
        {
            start.Environment[name] = value;
        }
        // The suites read the OpenAPI document (route lists, the malformed-request corpus); it is off
        // by default outside Development. A test that checks the default passes null to remove it.
        start.Environment["API_REFERENCE_ENABLED"] = "true";
        foreach (var (name, value) in _options.Environment)
        {
            if (value is null)
            {
                start.Environment.Remove(name);
            }
            else
            {
                start.Environment[name] = value;
            }
        }

        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                _log.Add(e.Data);
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                _log.Add(e.Data);
            }
        };
        if (!process.Start())
        {
            throw new InvalidOperationException("dotnet could not be started.");
        }

        _process = process;
        Live[this] = 0;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        if (_options.WaitForReady)
        {
            await WaitForReadyAsync(_options.ReadyTimeout, cancellationToken);
        }
    }
}
