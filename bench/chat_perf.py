#!/usr/bin/env python3
"""A sampled CPU profile (perf) of one replica of Jackcwf answering JSON chat messages
(POST /api/conversations/{id}/messages, as bench/chat_ab.py sends them), attributed to code.

  python3 bench/chat_perf.py [--dll path/Jackcwf.Api.dll] [--model demo/echo] [--seconds 15]

Starts one replica as the benchmark does, with DOTNET_PerfMapEnabled=1 (perf names the JIT's code
from /tmp/perf-<pid>.map) and DOTNET_EnableWriteXorExecute=0 (without it perf sees that code only as
`memfd:doublemapper`), warms it up (the JIT tiers the chat path up over 1,000-1,500 messages), then
runs `perf record -F 999 -g -p <pid>` while 8 clients send messages. Prints the share of the
service's samples by the first frame outside the runtime (CoreLib, libc, libcoreclr, the kernel)
on each stack, leaf first, grouped by assembly or namespace, then the project's own methods.
Needs perf and what bench/run.sh needs; run as root (or with perf_event_paranoid ≤ 1).
"""
import argparse, collections, os, re, subprocess, sys, tempfile, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

# A frame of the runtime: a sample is given to the first frame on its stack (leaf first) outside these.
RUNTIME_ASSEMBLIES = {"System.Private.CoreLib", "System.Runtime"}
GROUPS = [  # first match names the group of a frame
    ("this project's code", r"Jackcwf\."),
    ("EF Core", r"Microsoft\.EntityFrameworkCore"), ("Npgsql", r"Npgsql"), ("StackExchange.Redis", r"StackExchange\.Redis"),
    ("Kestrel", r"Microsoft\.AspNetCore\.Server"), ("authentication and authorization", r"Microsoft\.AspNetCore\.Authentication|Microsoft\.AspNetCore\.Authorization|Microsoft\.AspNetCore\.Identity"),
    ("data protection", r"Microsoft\.AspNetCore\.DataProtection|System\.Security\.Cryptography"),
    ("routing and minimal APIs", r"Microsoft\.AspNetCore\.Routing|Microsoft\.AspNetCore\.Http"),
    ("other ASP.NET Core", r"Microsoft\.AspNetCore"), ("System.Text.Json", r"System\.Text\.Json"),
    ("logging", r"Microsoft\.Extensions\.Logging|Serilog"), ("dependency injection", r"Microsoft\.Extensions\.DependencyInjection"),
    ("Microsoft.Extensions.AI", r"Microsoft\.Extensions\.AI"), ("OpenTelemetry and metrics", r"OpenTelemetry|System\.Diagnostics\.Metrics|System\.Diagnostics\.DiagnosticSource"),
    ("OpenAI SDK and System.ClientModel", r"OpenAI|System\.ClientModel"), ("System.Net.Http", r"System\.Net\.Http"),
    ("sockets", r"System\.Net\.Sockets"), ("Polly", r"Polly"), ("Channels", r"System\.Threading\.Channels"),
]

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--dll", help="Jackcwf.Api.dll to profile (default: this checkout's Release build, or BENCH_JACKCWF_DLL)")
ap.add_argument("--model", default="demo/echo", help="the conversations' model (openai/gpt-4o-mini: the fake OpenAI upstream)")
ap.add_argument("--warmup", type=int, default=2000, help="messages before the profile")
ap.add_argument("--seconds", type=int, default=15, help="seconds of perf record under load")
ap.add_argument("--top", type=int, default=40, help="the project's methods listed")
ap.add_argument("--syscalls", action="store_true", help="count the system calls per message (perf stat) instead of sampling")
ap.add_argument("--keep", help="save perf's samples (perf script output) to this file")
args = ap.parse_args()
if not __import__("shutil").which("perf"):
    sys.exit("chat_perf.py needs perf, which is not installed: apt-get install linux-perf (Debian), then run again as root")


def frame(line):
    """(owner, name) of one perf script frame "<addr> <symbol> (<dso>)": owner is the managed assembly (the
    perf map names JIT'd code "<signature> [Assembly] Namespace.Type::Method(...)[Tier]") or the native dso;
    None for the runtime."""
    m = re.match(r"\s*\S+ (.*) \(([^()]*)\)$", line)
    sym, dso = (m.group(1), m.group(2)) if m else (line.strip(), "")
    managed = re.search(r"\[([\w.]+)\] ([^\s(]+)", sym)
    if managed:
        assembly, name = managed.groups()
        return (None if assembly in RUNTIME_ASSEMBLIES else assembly), name
    return None, sym + " (" + os.path.basename(dso) + ")"


def attribute(script_out):
    groups, methods, total = collections.Counter(), collections.Counter(), 0
    for block in script_out.split("\n\n"):
        lines = [l for l in block.splitlines() if l.strip()]
        if len(lines) < 2:
            continue
        total += 1
        frames = [frame(l) for l in lines[1:]]
        owner = next(((a, n) for a, n in frames if a), None)
        if owner is None:
            group = "kernel alone" if "kernel" in frames[0][1] else "runtime alone (GC, stubs, thread pool, CoreLib, libc)"
        else:
            assembly, name = owner
            group = next((g for g, pat in GROUPS if re.match(pat, name) or re.match(pat, assembly)), "other: " + assembly)
            if group == "this project's code":
                methods[name[:140]] += 1
        groups[group] += 1
    return total, groups, methods


work = tempfile.mkdtemp(prefix="jackcwf-chat-perf-")
os.chmod(work, 0o755)
try:
    if args.dll:
        os.environ["BENCH_JACKCWF_DLL"] = args.dll
    upstream = bench.start_upstream(work)
    pg_port, pg_pid = bench.start_postgres(work)
    redis_port, redis_pid = bench.start_redis(work)
    target = bench.start_jackcwf(work, upstream, pg_port, pg_pid, redis_port, redis_pid,
                                 {"DOTNET_PerfMapEnabled": "1", "DOTNET_EnableWriteXorExecute": "0"})
    bench.log(f"warming up with {args.warmup} messages")
    bench.send_chat_messages(target, args.model, args.warmup, 8)
    stop = threading.Event()
    sent = [0]

    def load():
        while not stop.is_set():
            bench.send_chat_messages(target, args.model, 100, 8)
            sent[0] += 100
    threading.Thread(target=load, daemon=True).start()
    time.sleep(1)
    data = os.path.join(work, "perf.data")
    perf_map = f"/tmp/perf-{target.pid}.map"
    jitted0 = sum(1 for _ in open(perf_map))
    cpu0, sent0 = bench.cpu_seconds(target.pid), sent[0]
    if args.syscalls:
        calls = ",".join(f"syscalls:sys_enter_{c}" for c in ("futex", "sendto", "sendmsg", "recvfrom", "recvmsg", "epoll_wait", "epoll_ctl",
                                                             "sched_yield", "accept4", "shutdown", "close", "read", "write", "getrandom"))
        stat = subprocess.run(["perf", "stat", "-e", calls, "-x", ",", "-p", str(target.pid), "--", "sleep", str(args.seconds)],
                              capture_output=True, text=True).stderr
        messages = sent[0] - sent0
        print(f"{messages} messages (±100) in {args.seconds} s, {(bench.cpu_seconds(target.pid) - cpu0) / messages * 1e6:.0f} µs of service CPU each")
        for line in stat.splitlines():
            f = line.split(",")
            if len(f) > 2 and f[0].strip().isdigit():
                print(f"{int(f[0]) / messages:7.2f} per message  {f[2].replace('syscalls:sys_enter_', '')}")
        sys.exit(0)
    subprocess.run(["perf", "record", "-F", "999", "-g", "-o", data, "-p", str(target.pid), "--", "sleep", str(args.seconds)],
                   check=True, capture_output=True)
    cpu1, messages = bench.cpu_seconds(target.pid), sent[0] - sent0
    stop.set()
    with open(perf_map) as f:
        jitted = [l.split(" ", 2)[2].strip() for l in f.readlines()[jitted0:]]
    out = subprocess.run(["perf", "script", "-i", data, "-F", "comm,tid,ip,sym,dso"], capture_output=True, text=True).stdout
    if args.keep:
        with open(args.keep, "w") as f:
            f.write(out)
    total, groups, methods = attribute(out)
    print(f"{total} samples over {args.seconds} s ({cpu1 - cpu0:.1f} s of service CPU, {messages} messages (±100), "
          f"{(cpu1 - cpu0) / messages * 1e6:.0f} µs each), load {os.getloadavg()[0]:.1f}; "
          f"{len(jitted)} methods and stubs compiled meanwhile (perf map), {sum('[Optimized' in j for j in jitted)} of them optimized")
    if args.keep:
        with open(args.keep + ".jitted", "w") as f:
            f.write("\n".join(jitted))
    for g, n in groups.most_common():
        print(f"{100 * n / total:5.1f} %  {g}")
    print(f"\nthe project's methods (first frame outside the runtime), top {args.top}:")
    for m, n in methods.most_common(args.top):
        print(f"{100 * n / total:5.1f} %  {m}")
finally:
    bench.stop_all()
