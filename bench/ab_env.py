#!/usr/bin/env python3
"""Compare two runtime settings or two builds of Jackcwf side by side: two replicas on one fake
upstream, PostgreSQL and Redis, wrk alternated between them in rounds (so a change of load hits both alike).

  python3 bench/ab_env.py --a '{}' --b '{"DOTNET_ThreadPool_UnfairSemaphoreSpinLimit":"70"}'
  python3 bench/ab_env.py --b-dll /tmp/old/src/Jackcwf.Api/bin/Release/net10.0/Jackcwf.Api.dll

Each of --a and --b is a JSON object of extra environment variables for that replica; --a-dll and
--b-dll run another build (default: this checkout's Release build, or BENCH_JACKCWF_DLL). Prints the
service, PostgreSQL and Redis CPU per request for every round and the median service CPU of each.
Needs a Release build (or BENCH_JACKCWF_DLL) and what bench/run.sh needs (wrk, PostgreSQL, Redis, node).
"""
import argparse, json, os, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--a", default="{}", help="JSON object: environment of replica A")
ap.add_argument("--b", default="{}", help="JSON object: environment of replica B")
ap.add_argument("--a-dll", help="Jackcwf.Api.dll of replica A")
ap.add_argument("--b-dll", help="Jackcwf.Api.dll of replica B")
ap.add_argument("--rounds", type=int, default=4)
ap.add_argument("--clients", type=int, default=16)
ap.add_argument("--seconds", type=int, default=6)
ap.add_argument("--warmup", type=int, default=4, help="seconds of load on each replica before the rounds (CPU per request keeps falling for about 20,000 requests while the JIT tiers the code: compare A with B, not with other runs)")
ap.add_argument("--stream", action="store_true", help="streamed requests (50 chunks) instead of non-streamed")
args = ap.parse_args()

work = tempfile.mkdtemp(prefix="jackcwf-ab-")
try:
    up = bench.start_upstream(work)
    pg_port, pg_pid = bench.start_postgres(work)
    redis_port, redis_pid = bench.start_redis(work)
    targets = {}
    default_dll = os.environ.get("BENCH_JACKCWF_DLL")
    for name, env, dll in (("A", json.loads(args.a), args.a_dll), ("B", json.loads(args.b), args.b_dll)):
        os.makedirs(os.path.join(work, name))
        if dll or default_dll:
            os.environ["BENCH_JACKCWF_DLL"] = dll or default_dll
        else:
            os.environ.pop("BENCH_JACKCWF_DLL", None)
        bench.log(f"starting replica {name} ({dll or 'this build'}) with {env or 'the defaults'}")
        targets[name] = bench.start_jackcwf(os.path.join(work, name), up, pg_port, pg_pid, redis_port, redis_pid, env)
    for t in targets.values():
        bench.wrk(t, bench.FAST, args.stream, args.clients, args.warmup)  # warm-up, not counted
    service = {name: [] for name in targets}
    for i in range(args.rounds):
        for name, t in targets.items():
            r = bench.wrk(t, bench.FAST, args.stream, args.clients, args.seconds)
            service[name].append(r["cpu_us"]["service"])
            cpu = ", ".join(f"{k} {round(v)} µs" for k, v in r["cpu_us"].items() if v is not None)
            print(f"round {i + 1} {name}: {round(r['rps'])} req/s, {cpu}, load {os.getloadavg()[0]:.1f}", flush=True)
    for name, values in service.items():
        print(f"{name}: median service CPU {round(bench.med(values))} µs per request over {len(values)} rounds")
    if args.rounds:
        print(f"A lower in {sum(a < b for a, b in zip(service['A'], service['B']))} of {args.rounds} rounds")
finally:
    bench.stop_all()
