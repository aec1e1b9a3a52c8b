namespace Jackcwf.Api.Accounts;

public sealed record UserAccess(Guid UserId, string Email, bool IsDisabled, decimal? MonthlyBudgetUsd, IReadOnlyList<string> Roles, string? SecurityStamp = null);
