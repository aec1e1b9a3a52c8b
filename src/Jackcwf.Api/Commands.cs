using System.Runtime.CompilerServices;
using Jackcwf.Api.Backup;
using Jackcwf.Api.Configuration;
using Jackcwf.Api.Data;
using Jackcwf.Api.Web;
using Microsoft.Extensions.Options;

namespace Jackcwf.Api;

/// <summary>Start-up plumbing and the binary's sub-commands (<c>migrate</c>, <c>backup</c>, <c>restore</c>, <c>migrate-data</c>, <c>healthcheck</c>).</summary>
internal static class Commands
{
    public const string Usage = """
        Usage: dotnet Jackcwf.Api.dll [command]

        Without a command the service starts; it reads its settings from environment variables
        (docs/configuration.md). DATABASE_URL selects the database for every command.

        Commands:
          migrate                       apply pending database migrations, then exit
          backup --to FILE              online, consistent copy of the SQLite database into FILE
                                        (SQLite's backup API; the service may keep running)
          restore --from FILE           replace the SQLite database with the backup FILE after checking
                                        it (PRAGMA integrity_check); refuses while the service runs
          migrate-data --from DATABASE_URL --to DATABASE_URL
                                        copy every table (for example SQLite to PostgreSQL) in batches,
                                        verify row counts and checksums; safe to run again
          healthcheck [URL]             exit 0 when /health/ready answers 200 (container health checks)
          --help                        print this list
        """;

    /// <summary>
    /// Runs a command that needs no web host and returns its exit code, or null when the host is
    /// needed (no command, <c>migrate</c>, or a configuration switch such as <c>--urls</c>).
    /// </summary>
    public static async Task<int?> RunToolAsync(string[] args)
    {
        if (args.Length == 0)
        {
            return null;
        }
        switch (args[0])
        {
            case "--help" or "-h" or "help":
                Console.WriteLine(Usage);
                return 0;
            case "healthcheck":
                return await HealthCheckAsync(args);
            case "migrate":
                return null;
            case "backup":
                return await ToolAsync(args, ["--to"], o => BackupAsync(o["--to"]));
            case "restore":
                return await ToolAsync(args, ["--from"], o => RestoreAsync(o["--from"]));
            case "migrate-data":
                return await ToolAsync(args, ["--from", "--to"], o => DataMigration.RunAsync(o["--from"], o["--to"], Console.Out, CancellationToken.None));
            case var first when first.StartsWith("--", StringComparison.Ordinal) && first.Length > 2:
                // Host switches (--urls, --Section:Key=value) go to the web host as before.
                return null;
            default:
                Console.Error.WriteLine($"Unknown command \"{args[0]}\".");
                Console.Error.WriteLine();
                Console.Error.WriteLine(Usage);
                return 2;
        }
    }

    /// <summary>Parses <c>--name value</c> / <c>--name=value</c> pairs (all required), then runs; usage errors exit 2, refusals 1.</summary>
    private static async Task<int> ToolAsync(string[] args, string[] required, Func<IReadOnlyDictionary<string, string>, Task<int>> run)
    {
        var options = new Dictionary<string, string>();
        for (var i = 1; i < args.Length; i++)
        {
            var (name, value) = args[i].Split('=', 2) is [var n, var v] ? (n, v) : (args[i], i + 1 < args.Length ? args[++i] : null);
            if (!required.Contains(name) || string.IsNullOrWhiteSpace(value) || options.ContainsKey(name))
            {
                return UsageError(args[0], $"unexpected argument \"{args[i]}\"");
            }
            options[name] = value;
        }
        if (required.FirstOrDefault(r => !options.ContainsKey(r)) is { } missing)
        {
            return UsageError(args[0], $"{missing} is required");
        }
        try
        {
            return await run(options);
        }
        catch (BackupRefusedException e)
        {
            Console.Error.WriteLine($"{args[0]}: {e.Message}");
            return 1;
        }
    }

    private static int UsageError(string command, string problem)
    {
        Console.Error.WriteLine($"{command}: {problem}.");
        Console.Error.WriteLine();
        Console.Error.WriteLine(Usage);
        return 2;
    }

    /// <summary>The database the service would use: DATABASE_URL (or Database__Url), relative SQLite paths against the working directory.</summary>
    private static DatabaseConnection ServiceDatabase()
    {
        var url = Environment.GetEnvironmentVariable("DATABASE_URL") ?? Environment.GetEnvironmentVariable("Database__Url");
        try
        {
            return DatabaseConnection.Parse(url, Directory.GetCurrentDirectory());
        }
        catch (FormatException e)
        {
            throw new BackupRefusedException(e.Message);
        }
    }

    private static async Task<int> BackupAsync(string to)
    {
        var connection = SqliteBackup.SqliteConnectionStringOrThrow(ServiceDatabase(), "backup");
        Console.WriteLine($"backup: copying {new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder(connection).DataSource} to {Path.GetFullPath(to)} (SQLite backup API, online)");
        var result = await SqliteBackup.BackupAsync(connection, to, CancellationToken.None);
        Console.WriteLine($"backup: done, {result.Path}: {result.Bytes} bytes, {result.Messages} messages, integrity_check ok");
        return 0;
    }

    private static async Task<int> RestoreAsync(string from)
    {
        var connection = SqliteBackup.SqliteConnectionStringOrThrow(ServiceDatabase(), "restore");
        Console.WriteLine($"restore: checking {Path.GetFullPath(from)} (PRAGMA integrity_check)");
        var (restored, previous) = await SqliteBackup.RestoreAsync(connection, from, CancellationToken.None);
        if (previous is not null)
        {
            Console.WriteLine($"restore: the database it replaced is kept at {previous}");
        }
        Console.WriteLine($"restore: done, {restored.Path}: {restored.Bytes} bytes, {restored.Messages} messages, integrity_check ok. Start the service again.");
        return 0;
    }

    /// <summary>Maps the seed's environment variables onto configuration; prints every bad value and returns false.</summary>
    public static bool AddJackcwfConfiguration(this WebApplicationBuilder builder)
    {
        var errors = EnvironmentVariables.Apply(builder.Configuration, Environment.GetEnvironmentVariable);
        try
        {
            _ = DatabaseConnection.Parse(builder.Configuration[DatabaseOptions.UrlKey], Directory.GetCurrentDirectory());
        }
        catch (FormatException e)
        {
            errors.Add(e.Message);
        }
        if (builder.Configuration[Backplane.RedisOptions.UrlKey] is { Length: > 0 } redis)
        {
            try
            {
                _ = Backplane.RedisUrl.Parse(redis);
            }
            catch (FormatException e)
            {
                errors.Add(e.Message);
            }
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
        var listen = string.IsNullOrEmpty(urls) ? $"http://+:{builder.Configuration.GetValue(ServerOptions.PortKey, 8080)}" : urls;
        var metricsPort = builder.Configuration.GetValue<int?>(ServerOptions.MetricsPortKey);
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
        app.Lifetime.ApplicationStarted.Register(() => app.Logger.LogInformation(
            "Jackcwf is listening on {Urls}; data: {Data}", string.Join(", ", app.Urls), DescribeData(app.Configuration)));
        var server = app.Services.GetRequiredService<IOptions<ServerOptions>>().Value;
        if (server.UvicornWorkers is { } w)
        {
            app.Logger.LogInformation("UVICORN_WORKERS={Workers} is accepted for compatibility and ignored: one process uses every core", w);
        }
        await app.RunAsync();
        return 0;
    }

    /// <summary>
    /// Validates every settings class now, before anything reads one, and reports each bad value (from
    /// appsettings.json, the environment or the command line) naming its setting: on stderr like the
    /// environment-variable errors, and as a critical log event for log shippers. False when any is
    /// bad, after disposing the app so the log lines are written before the process exits.
    /// </summary>
    public static async Task<bool> ValidateSettingsAsync(WebApplication app)
    {
        try
        {
            app.Services.GetService<IStartupValidator>()?.Validate();
            return true;
        }
        catch (Exception e) when (SettingsErrors(e) is { Count: > 0 } errors)
        {
            foreach (var error in errors)
            {
                Console.Error.WriteLine($"Configuration error: {error}");
                app.Logger.LogCritical("Configuration error: {Error}", error);
            }
            Console.Error.WriteLine("Fix the settings above (see docs/configuration.md) and start again.");
            await app.DisposeAsync();
            return false;
        }
    }

    // A validator's refusal, or the binder's "Failed to convert configuration value at 'Section:Key'".
    private static List<string> SettingsErrors(Exception e) => e switch
    {
        OptionsValidationException v => [.. v.Failures],
        AggregateException a => [.. a.InnerExceptions.SelectMany(SettingsErrors)],
        InvalidOperationException { InnerException: not null } i when i.Message.StartsWith("Failed to convert configuration value", StringComparison.Ordinal) => [i.Message],
        _ => [],
    };

    /// <summary>Where the data lives, for the first log lines: a SQLite path or a PostgreSQL host and database, never credentials.</summary>
    internal static string DescribeData(IConfiguration configuration)
    {
        var db = DatabaseConnection.Parse(configuration[DatabaseOptions.UrlKey], Directory.GetCurrentDirectory());
        return db.Provider == DatabaseProvider.Sqlite ? DescribeSqlite(db.ConnectionString) : DescribePostgres(db.ConnectionString);
    }

    // One method per provider: a method that names a provider's types loads its assembly when it is first
    // called, so a PostgreSQL replica never loads Microsoft.Data.Sqlite and a SQLite one never loads Npgsql here.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static string DescribeSqlite(string connectionString) =>
        $"SQLite {Path.GetFullPath(new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder(connectionString).DataSource)}";

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static string DescribePostgres(string connectionString)
    {
        var pg = new Npgsql.NpgsqlConnectionStringBuilder(connectionString);
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
