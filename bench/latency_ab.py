#!/usr/bin/env python3
"""Added latency of non-streamed /v1 requests (20 ms upstream) for builds or runtime settings side by side,
in alternated rounds, with where each request's wall time went when a build carries the stage timestamps
of latency-probe.patch.

  python3 bench/latency_ab.py 'old={}@/tmp/old/Jackcwf.Api.dll' 'new={}@/tmp/new/Jackcwf.Api.dll'
  python3 bench/latency_ab.py 'base={}@/tmp/probe/Jackcwf.Api.dll' 'g64={"DOTNET_GCgen0size":"0x4000000"}@/tmp/probe/Jackcwf.Api.dll' --verbose

Each variant is NAME=ENV[@DLL]: ENV a JSON object of extra environment variables, DLL a build (default:
this checkout's Release build). All variants share one fake upstream, PostgreSQL and Redis; each is warmed
with 20,000 requests (the JIT's tiering), then every round runs wrk straight against the upstream and
then against each variant, the order rotated. Printed per round and variant: p50/p99 above the upstream's,
service CPU per request, the Redis CPU per script call, and, from a probe build (GET /__lat): the p50/p99
of the admission's and the settlement's round trips, the time in the service apart from the provider
call, and the GC's pauses. Then medians, how many rounds each variant won (two variants), and with
--ttft N, N batches of 40 sequential streamed requests' time to first token (with --verbose and a
probe build, the stages of those requests up to their first chunk).

A probe build: git apply bench/latency-probe.patch; dotnet build src/Jackcwf.Api -c Release -o /tmp/probe;
git checkout -- src (and delete src/Jackcwf.Api/LatProbe.cs). It is on with LATPROBE=1, which this script sets.
"""
import argparse, json, os, re, statistics, subprocess, sys, tempfile, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

bench.SETTLE_STATS = False
ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("variants", nargs="+", help="NAME=ENV_JSON[@DLL]")
ap.add_argument("--rounds", type=int, default=6)
ap.add_argument("--seconds", type=int, default=6)
ap.add_argument("--warm", type=int, default=20000, help="requests per variant before the rounds")
ap.add_argument("--clients", type=int, default=16)
ap.add_argument("--ttft", type=int, default=0)
ap.add_argument("--verbose", action="store_true", help="print each probe report whole")
a = ap.parse_args()


def script_us(port):
    out = subprocess.run(["redis-cli", "-p", str(port), "info", "commandstats"], capture_output=True, text=True).stdout
    calls = usec = 0
    for m in re.finditer(r"cmdstat_(eval\w*):calls=(\d+),usec=(\d+)", out):
        calls += int(m.group(2)); usec += int(m.group(3))
    return calls, usec


def probe(t):
    try:
        text = urllib.request.urlopen(t.base + "/__lat", timeout=10).read().decode()
        return text if text.startswith("n=") else ""  # a build without the probe answers with the web app's page
    except Exception:
        return ""


def stage(rep, frm, to):
    m = re.search(frm + r"\s*->" + to + r"\s+p50\s+(\d+) p90\s+(\d+) p99\s+(\d+)", rep)
    return (int(m.group(1)), int(m.group(3))) if m else None


work = tempfile.mkdtemp(prefix="jackcwf-lat-")
try:
    up = bench.start_upstream(work)
    pg_port, pg_pid = bench.start_postgres(work)
    r_port, r_pid = bench.start_redis(work)
    ts = {}
    for v in a.variants:
        name, spec = v.split("=", 1)
        env, _, dll = spec.partition("@")
        if dll:
            os.environ["BENCH_JACKCWF_DLL"] = dll
        else:
            os.environ.pop("BENCH_JACKCWF_DLL", None)
        os.makedirs(os.path.join(work, name))
        ts[name] = bench.start_jackcwf(os.path.join(work, name), up, pg_port, pg_pid, r_port, r_pid, {"LATPROBE": "1", **json.loads(env or "{}")})
    for t in ts.values():
        served, began = 0, time.time()
        while served < a.warm and time.time() - began < 90:
            served += bench.wrk(t, bench.FAST, False, 16, 5)["requests"]
        probe(t)
    names = list(ts)
    res = {n: [] for n in names}
    for r in range(a.rounds):
        d = bench.wrk(up, bench.DELAYED, False, a.clients, a.seconds)
        line = f"round {r + 1} direct {d['p50_ms']:.2f}/{d['p99_ms']:.2f} ms"
        for name in names[r % len(names):] + names[:r % len(names)]:
            t = ts[name]
            c0 = script_us(r_port)
            x = bench.wrk(t, bench.DELAYED, False, a.clients, a.seconds)
            c1 = script_us(r_port)
            rep = probe(t)
            row = {"p50": x["p50_ms"] - d["p50_ms"], "p99": x["p99_ms"] - d["p99_ms"], "cpu": x["cpu_us"]["service"],
                   "redis_script_us": (c1[1] - c0[1]) / max(1, c1[0] - c0[0])}
            line += f" | {name} +{row['p50']:.2f}/+{row['p99']:.2f} cpu {row['cpu']:.0f} µs, Redis {row['redis_script_us']:.0f} µs/script"
            if rep and "total p50" in rep:
                total = re.search(r"total p50 (\d+)", rep); prov = re.search(r"provider\(headers-sent\) p50 (\d+)", rep)
                gc = re.search(r"pause ([\d.]+) ms", rep)
                row.update(admit=stage(rep, "admitSent", "admitDone"), settle=stage(rep, "settleSent", "settleDone"),
                           inside=int(total.group(1)) - int(prov.group(1)), gc_ms=float(gc.group(1)))
                line += (f", admission {row['admit'][0]}/{row['admit'][1]} µs, settlement {row['settle'][0]}/{row['settle'][1]} µs,"
                         f" in the service besides the provider {row['inside']} µs, GC pauses {row['gc_ms']:.0f} ms")
                if a.verbose:
                    print(name, rep, flush=True)
            res[name].append(row)
        print(line, f"| load {os.getloadavg()[0]:.1f}", flush=True)
    for n, rows in res.items():
        m = lambda k: statistics.median(r[k] for r in rows)
        extra = ""
        if all("admit" in r for r in rows):
            extra = (f", admission p50 {statistics.median(r['admit'][0] for r in rows):.0f} µs, settlement p50 "
                     f"{statistics.median(r['settle'][0] for r in rows):.0f} µs, in the service besides the provider {m('inside'):.0f} µs")
        print(f"median {n}: +{m('p50'):.2f} / +{m('p99'):.2f} ms, service CPU {m('cpu'):.0f} µs per request{extra}", flush=True)
    if len(names) == 2:
        A, B = names
        won = lambda k: sum(rb[k] < ra[k] for ra, rb in zip(res[A], res[B]))
        print(f"{B} lower than {A} in {won('p50')}/{a.rounds} rounds (p50), {won('p99')}/{a.rounds} (p99), {won('cpu')}/{a.rounds} (CPU)")
    for _ in range(a.ttft):
        for name, t in list(ts.items()) + [("direct", up)]:
            bench.first_token_ms(t, bench.FAST)
            if t is not up:
                probe(t)
            s = [bench.first_token_ms(t, bench.FAST) for _ in range(40)]
            print(f"time to first token {name}: p50 {bench.med(s):.2f} ms, slowest {max(s):.2f} ms", flush=True)
            if t is not up and a.verbose and (rep := probe(t)):
                print(name, "(streamed, sequential: written = the first chunk flushed)", rep, flush=True)
finally:
    bench.stop_all()
