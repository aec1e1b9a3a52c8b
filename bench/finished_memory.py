#!/usr/bin/env python3
"""What a finished chat answer leaves in the replica's memory, and for how long: the live GC heap right after
--answers paced answers end and --wait seconds later (dotnet-gcdump snapshots; each collects the heap first).

  python3 bench/finished_memory.py                                   # this checkout's Release build
  python3 bench/finished_memory.py --dll /tmp/old/Jackcwf.Api.dll --wait 25

Starts the fake upstream, PostgreSQL, Redis and one replica as bench.py does, with the demo model at 25 ms a
word (a model's pace), sends --answers JSON messages of --words words at once, each in its own conversation,
and reports the heap before, right after and --wait seconds after. The difference between the last two is what
the finished answers' in-process event log held (kept for late resumes, then swept), per answer.
Needs dotnet-gcdump (`dotnet tool install -g dotnet-gcdump`).
"""
import argparse, os, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--dll", help="Jackcwf.Api.dll to run (default: this checkout's Release build, or BENCH_JACKCWF_DLL)")
ap.add_argument("--answers", type=int, default=200)
ap.add_argument("--words", type=int, default=400)
ap.add_argument("--wait", type=int, default=25, help="seconds after the answers end before the last snapshot")
args = ap.parse_args()
if args.dll:
    os.environ["BENCH_JACKCWF_DLL"] = args.dll
gcdump = bench.dotnet_tool("dotnet-gcdump")
work = tempfile.mkdtemp(prefix="jackcwf-finished-")


def heap_bytes(pid, tag):
    """The live heap after a full collection (dotnet-gcdump collects before it walks the heap)."""
    out = os.path.join(work, f"{tag}.gcdump")
    subprocess.run([gcdump, "collect", "-p", str(pid), "-o", out], capture_output=True, check=True)
    report = subprocess.run([gcdump, "report", out], capture_output=True, text=True, check=True).stdout
    return int(next(l for l in report.splitlines() if "GC Heap bytes" in l).split()[0].replace(",", ""))


try:
    up = bench.start_upstream(work)
    pg_port, pg_pid = bench.start_postgres(work)
    redis_port, redis_pid = bench.start_redis(work)
    jack = bench.start_jackcwf(work, up, pg_port, pg_pid, redis_port, redis_pid, {"DEMO_CHUNK_DELAY_MS": "25"})
    auth = {"authorization": f"Bearer {jack.token}"}
    content = " ".join(f"word{i}" for i in range(args.words))
    conversations = [bench.request(jack.base, "POST", "/api/conversations", {"model": "demo/echo"}, auth)[1]["id"] for _ in range(args.answers)]
    before = heap_bytes(jack.pid, "before")
    began = time.perf_counter()
    statuses = bench.answer_at_once(jack, conversations, [content] * len(conversations))
    answered = sum(1 for s in statuses if s < 300)
    bench.log(f"{answered} of {args.answers} answers of {args.words} words ({len(content):,} characters) in {time.perf_counter() - began:.1f} s")
    after = heap_bytes(jack.pid, "after")
    time.sleep(args.wait)
    later = heap_bytes(jack.pid, "later")
    print(f"live heap: {before:,} bytes before, {after:,} right after the answers, {later:,} {args.wait} s later; "
          f"released: {after - later:,} bytes, {(after - later) / max(answered, 1):,.0f} a finished answer "
          f"(load average {os.getloadavg()[0]:.1f})")
finally:
    bench.stop_all()
