namespace Jackcwf.Api.Accounts;

public sealed record CreateKeyRequest(string? Name);

public sealed record CreatedKey(Guid Id, string Name, string Prefix, string Key, DateTime CreatedAt);

public sealed record KeySummary(Guid Id, string Name, string Prefix, DateTime CreatedAt, DateTime? LastUsedAt);

public sealed record KeyList(IReadOnlyList<KeySummary> Items);
