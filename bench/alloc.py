#!/usr/bin/env python3
"""Bytes allocated per /v1 request, by type and by allocating code: one Jackcwf replica (full pipeline, as
bench/run.sh starts it), warmed up with wrk, then a dotnet-trace gc-verbose trace over one more wrk run,
read by bench/AllocReport.

  python3 bench/alloc.py                  # non-streamed, 16 clients
  python3 bench/alloc.py --stream         # streamed (50 chunks)
  python3 bench/alloc.py --dll /tmp/old/Jackcwf.Api.dll --top 50 --keep /tmp/v1.nettrace
  python3 bench/alloc.py --chat demo/echo  # JSON chat messages (8 clients, as bench/chat_ab.py sends them)

The figure is the allocation samples' sum (one sample per ~100 KB allocated, carrying the bytes since
the previous one) over the requests wrk completed while the trace ran: a few hundred bytes either way
between runs; compare builds by their difference, not by one run. Needs dotnet-trace (a dotnet tool)
and what bench/run.sh needs.
"""
import argparse, os, signal, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--stream", action="store_true")
ap.add_argument("--dll", help="Jackcwf.Api.dll to measure (default: this checkout's Release build)")
ap.add_argument("--clients", type=int, default=16)
ap.add_argument("--seconds", type=int, default=6)
ap.add_argument("--top", type=int, default=30)
ap.add_argument("--keep", help="where to keep the trace")
ap.add_argument("--chat", metavar="MODEL", help="JSON chat messages to conversations of this model instead of /v1 requests")
ap.add_argument("--messages", type=int, default=600, help="--chat: messages in the trace (after 2,000 to warm up)")
args = ap.parse_args()

tool = bench.dotnet_tool("dotnet-trace")
report = os.path.join(bench.HERE, "AllocReport")
subprocess.run(["dotnet", "build", report, "-c", "Release", "-nologo", "-v", "q", "-clp:ErrorsOnly"], check=True)
if args.dll:
    os.environ["BENCH_JACKCWF_DLL"] = args.dll
bench.SETTLE_STATS = False
work = tempfile.mkdtemp(prefix="jackcwf-alloc-")
trace = args.keep or os.path.join(work, "alloc.nettrace")
try:
    up = bench.start_upstream(work)
    pg_port, pg_pid = bench.start_postgres(work)
    redis_port, redis_pid = bench.start_redis(work)
    jack = bench.start_jackcwf(work, up, pg_port, pg_pid, redis_port, redis_pid)
    for _ in range(3 if not args.chat else 0):  # the JIT's tiering: allocations settle with the code
        bench.wrk(jack, bench.FAST, args.stream, args.clients, 5)
    if args.chat:
        bench.send_chat_messages(jack, args.chat, 2000, 8)
        conversations = bench.new_conversations(jack, args.chat, args.messages)
    collect = subprocess.Popen([tool, "collect", "-p", str(jack.pid), "--profile", "gc-verbose", "-o", trace]
                               + ([] if args.chat else ["--duration", "00:00:00:%02d" % (args.seconds + 3)]), stdout=subprocess.DEVNULL)
    time.sleep(1.5)
    if args.chat:
        # Only the messages: the trace ends (SIGINT) once they are answered and the usage ledger's batch (1 s) is written.
        failures = bench.send_chat_messages(jack, args.chat, args.messages, 8, conversations)
        time.sleep(1.5)
        collect.send_signal(signal.SIGINT)
        r = {"requests": args.messages - len(failures)}
    else:
        r = bench.wrk(jack, bench.FAST, args.stream, args.clients, args.seconds)
    collect.wait()
    what = f"chat messages ({args.chat}, 8 clients)" if args.chat else f"requests ({'streamed' if args.stream else 'non-streamed'}, {args.clients} clients)"
    bench.log(f"{r['requests']} {what} in the trace, load {os.getloadavg()[0]:.1f}")
finally:
    bench.stop_all()
subprocess.run(["dotnet", os.path.join(report, "bin", "Release", "net10.0", "AllocReport.dll"), trace, str(r["requests"]), str(args.top)], check=True)
