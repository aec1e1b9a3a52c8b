using System.Globalization;

namespace Jackcwf.Api.Accounts;

public sealed record AdminUsage(decimal CostUsd, int Requests, long InputTokens, long OutputTokens);

public sealed record AdminUser(Guid Id, string Email, bool IsAdmin, bool Disabled, DateTime CreatedAt, decimal? MonthlyBudgetUsd, AdminUsage Usage);

public sealed record AdminUserList(IReadOnlyList<AdminUser> Items);

public sealed record UpdateUserRequest(decimal? MonthlyBudgetUsd, bool? ClearBudget);
