namespace Jackcwf.Api.Accounts;

public sealed record KeyOwner(Guid KeyId, Guid UserId);
