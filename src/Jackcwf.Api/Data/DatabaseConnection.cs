using Npgsql;

namespace Jackcwf.Api.Data;

public enum DatabaseProvider { Sqlite, PostgreSql }

/// <summary>Where the data lives, resolved once from <c>DATABASE_URL</c>.</summary>
public sealed record DatabaseConnection(DatabaseProvider Provider, string ConnectionString)
{
    public const string DefaultSqlitePath = "data/jackcwf.db";

    /// <summary>
    /// Accepts <c>postgresql://</c>, <c>postgres://</c>, the seed's <c>postgresql+asyncpg://</c>,
    /// an Npgsql key/value string, <c>sqlite:///path</c> or <c>Data Source=…</c>; unset means SQLite.
    /// </summary>
    public static DatabaseConnection Parse(string? url, string contentRoot)
    {
        if (string.IsNullOrWhiteSpace(url))
        {
            return Sqlite(Path.Combine(contentRoot, DefaultSqlitePath));
        }
        url = url.Trim();
        if (url.StartsWith("sqlite:", StringComparison.OrdinalIgnoreCase))
        {
            var path = url["sqlite:".Length..].TrimStart('/');
            // sqlite:////abs/path keeps one leading slash; sqlite:///rel/path is relative.
            if (url.StartsWith("sqlite:////", StringComparison.OrdinalIgnoreCase))
            {
                path = "/" + path;
            }
            return Sqlite(Path.IsPathRooted(path) ? path : Path.Combine(contentRoot, path));
        }
        if (url.StartsWith("Data Source=", StringComparison.OrdinalIgnoreCase))
        {
            return new(DatabaseProvider.Sqlite, url);
        }
        var schemeEnd = url.IndexOf("://", StringComparison.Ordinal);
        if (schemeEnd > 0)
        {
            var scheme = url[..schemeEnd].ToLowerInvariant();
            if (scheme is not ("postgresql" or "postgres" or "postgresql+asyncpg" or "postgresql+psycopg" or "postgresql+psycopg2"))
            {
                throw new FormatException($"DATABASE_URL has an unsupported scheme \"{scheme}\"; use postgresql://user:password@host:5432/database.");
            }
            return new(DatabaseProvider.PostgreSql, FromUri(new Uri("postgresql" + url[schemeEnd..])));
        }
        try
        {
            return new(DatabaseProvider.PostgreSql, new NpgsqlConnectionStringBuilder(url).ConnectionString);
        }
        catch (ArgumentException)
        {
            throw new FormatException("DATABASE_URL is neither a URL (postgresql://user:password@host:5432/database) nor a connection string.");
        }
    }

    private static DatabaseConnection Sqlite(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        return new(DatabaseProvider.Sqlite, $"Data Source={path};Pooling=True;Default Timeout=30");
    }

    private static string FromUri(Uri uri)
    {
        var b = new NpgsqlConnectionStringBuilder
        {
            Host = uri.Host,
            Port = uri.IsDefaultPort || uri.Port <= 0 ? 5432 : uri.Port,
            Database = Uri.UnescapeDataString(uri.AbsolutePath.Trim('/')) is { Length: > 0 } db ? db : "postgres",
        };
        if (uri.UserInfo.Length > 0)
        {
            var parts = uri.UserInfo.Split(':', 2);
            b.Username = Uri.UnescapeDataString(parts[0]);
            if (parts.Length == 2)
            {
                b.Password = Uri.UnescapeDataString(parts[1]);
            }
        }
        foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            try
            {
                ApplyOption(b, pair);
            }
            catch (Exception e) when (e is ArgumentException or FormatException or OverflowException or KeyNotFoundException)
            {
                throw new FormatException($"DATABASE_URL has an invalid option \"{pair.Split('=')[0]}\"; see the Npgsql connection string options.");
            }
        }
        b.ApplicationName ??= "jackcwf";
        return b.ConnectionString;
    }

    private static void ApplyOption(NpgsqlConnectionStringBuilder b, string pair)
    {
        var kv = pair.Split('=', 2);
        var key = Uri.UnescapeDataString(kv[0]);
        var value = kv.Length == 2 ? Uri.UnescapeDataString(kv[1]) : "";
        switch (key.ToLowerInvariant())
        {
            case "sslmode": b.SslMode = Enum.Parse<SslMode>(value, ignoreCase: true); break;
            case "application_name": b.ApplicationName = value; break;
            case "connect_timeout": b.Timeout = int.Parse(value, System.Globalization.CultureInfo.InvariantCulture); break;
            default: b[key] = value; break;
        }
    }
}
