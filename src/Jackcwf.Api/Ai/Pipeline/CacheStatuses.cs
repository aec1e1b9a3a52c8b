using System.Diagnostics;
using Microsoft.Extensions.AI;

namespace Jackcwf.Api.Ai.Pipeline;

public static class CacheStatuses
{
    public const string Hit = "HIT";
    public const string Miss = "MISS";
    public const string Bypass = "BYPASS";
}
