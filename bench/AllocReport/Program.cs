using Microsoft.Diagnostics.Tracing.Etlx;
using Microsoft.Diagnostics.Tracing.Parsers.Clr;

// AllocReport TRACE.nettrace REQUESTS [TOP]: the allocation samples (GCAllocationTick, one per ~100 KB
// allocated, carrying the bytes since the last one) of a gc-verbose trace, per request: by type, by the
// first frame of this project's code, and by type and that frame with the two frames below it.
if (args.Length < 2)
{
    Console.Error.WriteLine("usage: AllocReport TRACE.nettrace REQUESTS [TOP]");
    return 2;
}
var requests = double.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture);
var top = args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 30;
using var log = new TraceLog(TraceLog.CreateFromEventPipeDataFile(args[0]));
var byType = new Dictionary<string, long>();
var byOwner = new Dictionary<string, long>();
var byOwnerType = new Dictionary<string, long>();
long total = 0;
foreach (var e in log.Events)
{
    if (e is not GCAllocationTickTraceData tick)
    {
        continue;
    }
    var type = tick.TypeName ?? "?";
    total += tick.AllocationAmount64;
    Add(byType, type, tick.AllocationAmount64);
    var frames = new List<string>();
    for (var frame = e.CallStack(); frame is not null && frames.Count < 60; frame = frame.Caller)
    {
        frames.Add(frame.CodeAddress.FullMethodName ?? "?");
    }
    var own = frames.FindIndex(f => f.StartsWith("Jackcwf", StringComparison.Ordinal));
    var owner = own < 0 ? "(no Jackcwf frame)" : frames[own];
    Add(byOwner, owner, tick.AllocationAmount64);
    var below = own <= 0 ? "" : " via " + string.Join(" < ", frames.Skip(Math.Max(0, own - 2)).Take(Math.Min(2, own)).Select(f => f.Length > 90 ? f[..90] : f));
    Add(byOwnerType, $"{type} in {owner}{below}", tick.AllocationAmount64);
}
Console.WriteLine($"allocated {total:N0} bytes in the trace: {total / requests:N0} bytes per request over {requests:N0} requests");
Print("by type", byType);
Print("by first frame of this project's code (async continuations start a new stack)", byOwner);
Print("by type and that frame", byOwnerType);
return 0;

void Add(Dictionary<string, long> table, string key, long bytes) => table[key] = table.GetValueOrDefault(key) + bytes;

void Print(string title, Dictionary<string, long> table)
{
    Console.WriteLine($"== {title}");
    foreach (var (key, bytes) in table.OrderByDescending(kv => kv.Value).Take(top))
    {
        Console.WriteLine($"{100.0 * bytes / total,6:F2} % {bytes / requests,8:N0} B/req  {key}");
    }
}
