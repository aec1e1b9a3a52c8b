using System.Globalization;

namespace Jackcwf.Api.Usage;

/// <summary><c>CachedRequests</c>: answers from the response cache (cost 0); <c>TokensSaved</c>: the tokens those would have used.</summary>
public sealed record UsageTotals(long InputTokens, long OutputTokens, decimal CostUsd, int Requests, int CachedRequests = 0, long TokensSaved = 0);

public sealed record ModelUsage(string Model, long InputTokens, long OutputTokens, decimal CostUsd, int Requests);

public sealed record DayUsage(string Date, long InputTokens, long OutputTokens, decimal CostUsd, int Requests);

public sealed record UsageReport(DateTime From, DateTime To, UsageTotals Totals, IReadOnlyList<ModelUsage> ByModel, IReadOnlyList<DayUsage> ByDay);

/// <summary>One model's use by every account, and the thumbs up and down its answers got, in the period.</summary>
public sealed record AdminModelUsage(string Model, long InputTokens, long OutputTokens, decimal CostUsd, int Requests, int ThumbsUp, int ThumbsDown);

public sealed record AdminUsageReport(DateTime From, DateTime To, IReadOnlyList<AdminModelUsage> ByModel);
