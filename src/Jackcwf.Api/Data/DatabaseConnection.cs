using System.Globalization;
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
            return new(DatabaseProvider.PostgreSql, FromUrl(url[(schemeEnd + 3)..]));
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

    /// <summary>
    /// libpq's URL grammar (<c>postgresql://[user[:password]@][host[:port]][,host[:port]…][/database][?option=value&amp;…]</c>),
    /// parsed by hand because <see cref="Uri"/> refuses the comma-separated host list of a multi-host URL.
    /// </summary>
    private static string FromUrl(string rest)
    {
        var authorityEnd = rest.IndexOfAny(['/', '?']);
        var authority = authorityEnd < 0 ? rest : rest[..authorityEnd];
        var tail = authorityEnd < 0 ? "" : rest[authorityEnd..];
        var queryStart = tail.IndexOf('?', StringComparison.Ordinal);
        var path = queryStart < 0 ? tail : tail[..queryStart];
        var query = queryStart < 0 ? "" : tail[(queryStart + 1)..];

        var b = new NpgsqlConnectionStringBuilder();
        var at = authority.LastIndexOf('@');
        if (at >= 0)
        {
            var parts = authority[..at].Split(':', 2);
            b.Username = Uri.UnescapeDataString(parts[0]);
            if (parts.Length == 2)
            {
                b.Password = Uri.UnescapeDataString(parts[1]);
            }
            authority = authority[(at + 1)..];
        }
        var hosts = authority.Split(',').Select(ParseHost).ToList();
        if (hosts.Count == 1)
        {
            b.Host = hosts[0].Host;
            b.Port = hosts[0].Port;
        }
        else
        {
            // Npgsql's multi-host form: every host with its own port, tried in order.
            b.Host = string.Join(",", hosts.Select(h => $"{h.Host}:{h.Port.ToString(CultureInfo.InvariantCulture)}"));
            // Several hosts mean a replicated cluster: the service writes on nearly every request, so it must
            // reach the primary (libpq's default "any" could pick a standby). The status of each host is
            // re-checked after 2 s instead of Npgsql's 10, so a promoted standby is found soon after a failover.
            b.TargetSessionAttributes = "primary";
            b.HostRecheckSeconds = 2;
        }
        b.Database = Uri.UnescapeDataString(path.Trim('/')) is { Length: > 0 } db ? db : "postgres";
        foreach (var pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            try
            {
                ApplyOption(b, pair);
            }
            catch (Exception e) when (e is ArgumentException or FormatException or OverflowException or KeyNotFoundException
                && !e.Message.StartsWith("DATABASE_URL", StringComparison.Ordinal))
            {
                throw new FormatException($"DATABASE_URL has an invalid option \"{Uri.UnescapeDataString(pair.Split('=')[0])}\"; see the Npgsql connection string options.");
            }
        }
        b.ApplicationName ??= "jackcwf";
        return b.ConnectionString;
    }

    private static (string Host, int Port) ParseHost(string spec)
    {
        string host;
        var portText = "";
        if (spec.StartsWith('['))
        {
            // [IPv6]:port
            var close = spec.IndexOf(']', StringComparison.Ordinal);
            if (close < 0)
            {
                throw new FormatException("DATABASE_URL has an IPv6 host without its closing \"]\"; write postgresql://user:password@[::1]:5432/database.");
            }
            host = spec[1..close];
            var after = spec[(close + 1)..];
            if (after.Length > 0)
            {
                if (after[0] != ':')
                {
                    throw new FormatException("DATABASE_URL has text after an IPv6 host; write [address]:port.");
                }
                portText = after[1..];
            }
        }
        else
        {
            var colon = spec.LastIndexOf(':');
            host = colon < 0 ? spec : spec[..colon];
            portText = colon < 0 ? "" : spec[(colon + 1)..];
        }
        host = Uri.UnescapeDataString(host);
        if (host.Length == 0)
        {
            throw new FormatException("DATABASE_URL names no host (or an empty one in its host list); write postgresql://user:password@host:5432/database, or host1:5432,host2:5432 for a cluster.");
        }
        if (portText.Length == 0)
        {
            return (host, 5432);
        }
        if (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
        {
            throw new FormatException($"DATABASE_URL has an invalid port \"{portText}\" for host {host}; ports are 1-65535.");
        }
        return (host, port);
    }

    /// <summary>
    /// libpq's <c>target_session_attrs</c> values in Npgsql's words. <c>read-write</c> becomes <c>primary</c>: the
    /// primary of a Patroni or CloudNativePG cluster is the one member that accepts writes.
    /// </summary>
    private static string TargetSessionAttributes(string value) => value.ToLowerInvariant() switch
    {
        "any" => "any",
        "read-write" or "primary" => "primary",
        "read-only" => "read-only",
        "standby" => "standby",
        "prefer-standby" => "prefer-standby",
        "prefer-primary" => "prefer-primary",
        _ => throw new FormatException($"DATABASE_URL has an invalid target_session_attrs \"{value}\"; use read-write (or primary), any, read-only, standby, prefer-standby or prefer-primary."),
    };

    private static void ApplyOption(NpgsqlConnectionStringBuilder b, string pair)
    {
        var kv = pair.Split('=', 2);
        var key = Uri.UnescapeDataString(kv[0]);
        var value = kv.Length == 2 ? Uri.UnescapeDataString(kv[1]) : "";
        switch (key.ToLowerInvariant())
        {
            case "sslmode": b.SslMode = Enum.Parse<SslMode>(value, ignoreCase: true); break;
            case "application_name": b.ApplicationName = value; break;
            case "connect_timeout": b.Timeout = int.Parse(value, CultureInfo.InvariantCulture); break;
            case "target_session_attrs": b.TargetSessionAttributes = TargetSessionAttributes(value); break;
            default: b[key] = value; break;
        }
    }
}
