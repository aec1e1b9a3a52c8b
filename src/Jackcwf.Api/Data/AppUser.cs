using Microsoft.AspNetCore.Identity;

namespace Jackcwf.Api.Data;

public sealed class AppUser : IdentityUser<Guid>
{
    public DateTime CreatedAt { get; set; } = DateTime.UtcNow;
    public bool IsDisabled { get; set; }
    /// <summary>Monthly spending limit in US dollars; null uses the default for all users.</summary>
    public decimal? MonthlyBudgetUsd { get; set; }
}
