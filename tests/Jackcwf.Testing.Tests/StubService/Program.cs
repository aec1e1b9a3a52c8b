using System.Globalization;

// Sub-command, like `Jackcwf.Api.dll migrate`: prints and exits with the given code.
if (args is ["exit", var code])
{
    Console.WriteLine("stub: command ran");
    return int.Parse(code, CultureInfo.InvariantCulture);
}

if (Environment.GetEnvironmentVariable("STUB_FAIL_AT_START") is { Length: > 0 } reason)
{
    Console.Error.WriteLine($"Configuration error: {reason}");
    return 3;
}

var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.ClearProviders();
var app = builder.Build();
var stopping = false;
app.Lifetime.ApplicationStarted.Register(() =>
{
    Console.WriteLine($"stub: listening on {string.Join(',', app.Urls)}");
    Console.Error.WriteLine("stub: stderr is captured too");
});
app.Lifetime.ApplicationStopping.Register(() =>
{
    stopping = true;
    Console.WriteLine("stub: stopping");
});
app.MapGet("/health/ready", () => stopping ? Results.StatusCode(503) : Results.Text("ready"));
app.MapGet("/env/{name}", (string name) => Results.Text(Environment.GetEnvironmentVariable(name) ?? "<unset>"));
app.MapGet("/cwd", () => Results.Text(Environment.CurrentDirectory));
app.MapGet("/pid", () => Results.Text(Environment.ProcessId.ToString(CultureInfo.InvariantCulture)));
await app.RunAsync();
return int.TryParse(Environment.GetEnvironmentVariable("STUB_EXIT_CODE"), out var exitCode) ? exitCode : 0;
