using System.Globalization;

namespace Jackcwf.Api.Limits;

/// <summary>Why a request was refused; <see cref="Limit"/> names the limit in the problem body.</summary>
public sealed record LimitRefusal(string Limit, TimeSpan RetryAfter, string Title, string Detail)
{
    public int RetryAfterSeconds => Math.Max(1, (int)Math.Ceiling(RetryAfter.TotalSeconds));
}

/// <summary>A limit refused a call inside the model pipeline (the budget reservation).</summary>
public sealed class LimitRefusedException(LimitRefusal refusal) : Exception(refusal.Detail)
{
    public LimitRefusal Refusal { get; } = refusal;
}
