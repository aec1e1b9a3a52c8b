using Jackcwf.Api.Configuration;
using Jackcwf.Api.Data;
using Microsoft.Extensions.Options;

namespace Jackcwf.Api;

/// <summary>Start-up plumbing and the binary's sub-commands (<c>migrate</c>, <c>healthcheck</c>).</summary>
internal static class Commands
{
    /// <summary>Maps the seed's environment variables onto configuration; prints every bad value and returns false.</summary>
    public static bool AddJackcwfConfiguration(this WebApplicationBuilder builder)
    {
        var errors = EnvironmentVariables.Apply(builder.Configuration, Environment.GetEnvironmentVariable);
        try
        {
            _ = DatabaseConnection.Parse(builder.Configuration["Database:Url"], Directory.GetCurrentDirectory());
        }
        catch (FormatException e)
        {
            errors.Add(e.Message);
        }
        if (errors.Count > 0)
        {
            foreach (var e in errors)
            {
                Console.Error.WriteLine($"Configuration error: {e}");
            }
            Console.Error.WriteLine("Fix the variables above (see docs/configuration.md) and start again.");
            return false;
        }
        var urls = builder.Configuration["ASPNETCORE_URLS"] ?? builder.Configuration["urls"];
        var listen = string.IsNullOrEmpty(urls) ? $"http://+:{builder.Configuration.GetValue("Server:Port", 8080)}" : urls;
        var metricsPort = builder.Configuration.GetValue<int?>("Server:MetricsPort");
        if (metricsPort is { } port)
        {
            // The metrics listener binds where the first public one does (all interfaces in a container).
            var first = listen.Split(';')[0];
            var host = first.Contains("://+", StringComparison.Ordinal) || first.Contains("://*", StringComparison.Ordinal) ? "+" : new Uri(first).Host;
            listen += $";http://{host}:{port}";
        }
        if (string.IsNullOrEmpty(urls) || metricsPort is not null)
        {
            builder.WebHost.UseUrls(listen);
        }
        return true;
    }

    public static async Task<int> RunAsync(WebApplication app)
    {
        var server = app.Services.GetRequiredService<IOptions<ServerOptions>>().Value;
        if (server.UvicornWorkers is { } w)
        {
            app.Logger.LogInformation("UVICORN_WORKERS={Workers} is accepted for compatibility and ignored: one process uses every core", w);
        }
        app.Lifetime.ApplicationStarted.Register(() => app.Logger.LogInformation(
            "Jackcwf is listening on {Urls}; data: {Data}", string.Join(", ", app.Urls), DescribeData(app.Configuration)));
        try
        {
            await app.RunAsync();
            return 0;
        }
        catch (OptionsValidationException e)
        {
            foreach (var f in e.Failures)
            {
                Console.Error.WriteLine($"Configuration error: {f}");
            }
            return 2;
        }
    }

    /// <summary>Where the data lives, for the first log lines: a SQLite path or a PostgreSQL host and database, never credentials.</summary>
    internal static string DescribeData(IConfiguration configuration)
    {
        var db = DatabaseConnection.Parse(configuration["Database:Url"], Directory.GetCurrentDirectory());
        if (db.Provider == DatabaseProvider.Sqlite)
        {
            return $"SQLite {Path.GetFullPath(new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder(db.ConnectionString).DataSource)}";
        }
        var pg = new Npgsql.NpgsqlConnectionStringBuilder(db.ConnectionString);
        return $"PostgreSQL {pg.Host}:{pg.Port}/{pg.Database}";
    }

    public static async Task<int> MigrateAsync(WebApplication app)
    {
        await using var scope = app.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        var logger = scope.ServiceProvider.GetRequiredService<ILoggerFactory>().CreateLogger("Jackcwf.Migrate");
        try
        {
            await DataExtensions.MigrateAsync(db, logger, CancellationToken.None);
            return 0;
        }
        catch (Exception e)
        {
            logger.LogError("Migration failed: {Error}", e.Message);
            return 1;
        }
    }

    /// <summary>For container health checks (no curl in the image): GET /health/ready, exit 0 on 200.</summary>
    public static async Task<int> HealthCheckAsync(string[] args)
    {
        var port = Environment.GetEnvironmentVariable("PORT") ?? "8080";
        var url = args.Length > 1 ? args[1] : $"http://127.0.0.1:{port}/health/ready";
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        try
        {
            using var response = await http.GetAsync(url);
            Console.WriteLine($"{url}: {(int)response.StatusCode}");
            return response.IsSuccessStatusCode ? 0 : 1;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            Console.WriteLine($"{url}: unreachable ({e.GetType().Name})");
            return 1;
        }
    }
}
