using System.Diagnostics;
using System.Text.Json;

namespace Jackcwf.OidcTests;

/// <summary>A user of the test provider: what they type on its sign-in page and the claims it then asserts.</summary>
public sealed record ProviderAccount(string Login, string Password, string Sub, string? Email, bool EmailVerified);

public sealed record ProviderClient(string ClientId, string ClientSecret, IReadOnlyList<string> RedirectUris);

/// <summary>
/// The real OpenID Connect provider of oidc-server/ (npm oidc-provider) as a Node child process on
/// 127.0.0.1. Its issuer is <c>http://127.0.0.1:{port}</c>.
/// </summary>
public sealed class OidcServer : IAsyncDisposable
{
    private readonly Process _process;
    private readonly LogCapture _log;
    private readonly string _configFile;

    private OidcServer(Process process, LogCapture log, string configFile, int port)
    {
        _process = process;
        _log = log;
        _configFile = configFile;
        Issuer = new Uri($"http://127.0.0.1:{port}");
    }

    public Uri Issuer { get; }

    public string Logs => _log.Text;

    public static string Folder => Path.Combine(RepoPaths.Root, "tests", "Jackcwf.OidcTests", "oidc-server");

    public static async Task<OidcServer> StartAsync(int port, IReadOnlyList<ProviderClient> clients, IReadOnlyList<ProviderAccount> accounts)
    {
        if (!File.Exists(Path.Combine(Folder, "node_modules", "oidc-provider", "package.json")))
        {
            throw new InvalidOperationException(
                $"The test OpenID Connect provider's packages are not installed: run `npm ci` in {Folder} (./test.sh does).");
        }
        var configFile = Path.Combine(Path.GetTempPath(), $"jackcwf-oidc-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(configFile, JsonSerializer.Serialize(new
        {
            port,
            clients = clients.Select(c => new { client_id = c.ClientId, client_secret = c.ClientSecret, redirect_uris = c.RedirectUris }),
            accounts = accounts.Select(a => new { login = a.Login, password = a.Password, sub = a.Sub, email = a.Email, email_verified = a.EmailVerified }),
        }));
        var start = new ProcessStartInfo("node") { WorkingDirectory = Folder, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add("server.js");
        start.ArgumentList.Add(configFile);
        var log = new LogCapture();
        var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { log.Add(e.Data); } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { log.Add(e.Data); } };
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException("Node.js is needed for the test OpenID Connect provider: `node` was not found on PATH.", e);
        }
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new OidcServer(process, log, configFile, port);
        try
        {
            var exited = process.WaitForExitAsync();
            var ready = log.WaitForAsync("oidc-server listening on", TimeSpan.FromSeconds(30));
            if (await Task.WhenAny(ready, exited) == exited)
            {
                throw new InvalidOperationException($"The test OpenID Connect provider exited with {process.ExitCode}:\n{log.Text}");
            }
            await ready;
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// The parameters of the authorization the provider granted to <paramref name="sub"/>, as it received
    /// them (also when the client pushed them first): <c>{ account, params: { response_type, … } }</c>.
    /// </summary>
    public async Task<JsonElement> GrantedAuthorizationAsync(string sub)
    {
        const string prefix = "authorization granted ";
        var line = await _log.WaitForAsync(l => l.StartsWith(prefix, StringComparison.Ordinal) && l.Contains($"\"account\":\"{sub}\"", StringComparison.Ordinal),
            $"the provider granting an authorization to {sub}", TimeSpan.FromSeconds(10));
        return JsonDocument.Parse(line[prefix.Length..]).RootElement.Clone();
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
            }
        }
        catch (InvalidOperationException)
        {
            // Never started.
        }
        _process.Dispose();
        File.Delete(_configFile);
    }
}
