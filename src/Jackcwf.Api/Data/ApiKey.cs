namespace Jackcwf.Api.Data;

/// <summary>A personal API key: only a SHA-256 hash is stored; the key itself is shown once.</summary>
public sealed class ApiKey
{
    public Guid Id { get; set; }
    public Guid UserId { get; set; }
    public string Name { get; set; } = "";
    /// <summary>The visible start of the key (<c>jk-abcd1234</c>), to recognise it in lists.</summary>
    public string Prefix { get; set; } = "";
    public string Hash { get; set; } = "";
    public DateTime CreatedAt { get; set; }
    public DateTime? LastUsedAt { get; set; }
}
