#!/usr/bin/env python3
"""CPU per chat message (POST /api/conversations/{id}/messages, JSON answer, demo model without delay or --model) of two
builds of Jackcwf, alternated in rounds so a change of machine load hits both alike.

  python3 bench/chat_ab.py --a-dll /tmp/old/Jackcwf.Api.dll [--b-dll src/Jackcwf.Api/bin/Release/net10.0/Jackcwf.Api.dll]

Each build runs with its own PostgreSQL and Redis (so a build's migrations and its schema are measured
together); the one not being measured is stopped (SIGSTOP), so its timers cost nothing. Prints, per round,
the service, PostgreSQL and Redis CPU per message, PostgreSQL's transactions and rows per message and
Redis's commands per message, then the medians. PostgreSQL's counts come from its statistics, which a
backend reports only once idle for a while: without --settle (11 s more per round) they miss what the
backends have not reported yet and are not to be compared (WAL bytes and the CPU figures are exact). Each of the 8 clients keeps its connection, as browsers and
SDKs do; --a-new-connection-each has build A's clients open and close one per message instead (with the
same --a-dll and --b-dll: what a connection per message costs). --stream asks for each answer as a
Server-Sent Events stream, read to its end, as the web app does, instead of JSON. Not part of the test
run; needs what bench/run.sh needs.

  python3 bench/chat_ab.py --a-dll <build>/Jackcwf.Api.dll --b-dll <build>/Jackcwf.Api.dll --a-new-connection-each --rounds 6
"""
import argparse, os, signal, statistics, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--a-dll", required=True, help="Jackcwf.Api.dll of build A (the one before a change)")
ap.add_argument("--b-dll", default=os.path.join(bench.ROOT, "src", "Jackcwf.Api", "bin", "Release", "net10.0", "Jackcwf.Api.dll"))
ap.add_argument("--rounds", type=int, default=10)
ap.add_argument("--messages", type=int, default=800, help="messages per round")
ap.add_argument("--warmup", type=int, default=6000, help="messages before the rounds (the JIT tiers the chat path up: after 5,000 messages it still compiled a third of the CPU)")
ap.add_argument("--model", default="demo/echo", help="the conversations' model (openai/gpt-4o-mini: the fake OpenAI upstream)")
ap.add_argument("--settle", action="store_true", help="wait for PostgreSQL's statistics after each round (11 s), so its transactions and rows per message are complete")
ap.add_argument("--stream", action="store_true", help="answers as Server-Sent Events streams read to their end (as the web app asks), not JSON")
ap.add_argument("--a-new-connection-each", action="store_true", help="build A's clients open a new connection for every message (warm-up included)")
args = ap.parse_args()

bench.SETTLE_STATS = args.settle
work = tempfile.mkdtemp(prefix="jackcwf-chat-ab-")
os.chmod(work, 0o755)
targets, results = {}, {"A": [], "B": []}
try:
    upstream = bench.start_upstream(work)
    for name, dll in (("A", args.a_dll), ("B", args.b_dll)):
        w = os.path.join(work, name)
        os.makedirs(w)
        pg_port, pg_pid = bench.start_postgres(w)
        redis_port, redis_pid = bench.start_redis(w)
        os.environ["BENCH_JACKCWF_DLL"] = dll
        targets[name] = bench.start_jackcwf(w, upstream, pg_port, pg_pid, redis_port, redis_pid)
        bench.chat_cpu_per_message(targets[name], args.model, args.warmup, new_connection_each=name == "A" and args.a_new_connection_each, stream=args.stream)
        os.kill(targets[name].pid, signal.SIGSTOP)
    for r in range(args.rounds):
        for name in ("A", "B") if r % 2 == 0 else ("B", "A"):
            os.kill(targets[name].pid, signal.SIGCONT)
            time.sleep(0.5)
            c = bench.chat_cpu_per_message(targets[name], args.model, args.messages, new_connection_each=name == "A" and args.a_new_connection_each, stream=args.stream)
            os.kill(targets[name].pid, signal.SIGSTOP)
            cpu = {k: round(v) for k, v in c["cpu_us"].items() if v is not None}
            results[name].append(cpu)
            print(f"round {r} {name}: {cpu} total {sum(cpu.values())} µs; pg{'' if args.settle else ' (unsettled)'} {({k: round(v, 2) for k, v in c['pg_per_message'].items()})}; "
                  f"redis {c['redis_commands_per_message']:.2f} commands; failures {c['failures']}; load {os.getloadavg()[0]:.1f}", flush=True)
    pairs = list(zip((sum(x.values()) for x in results["A"]), (sum(x.values()) for x in results["B"])))
    service = list(zip((x["service"] for x in results["A"]), (x["service"] for x in results["B"])))
    print(f"B lower in {sum(b < a for a, b in pairs)} of {len(pairs)} rounds (total), {sum(b < a for a, b in service)} of {len(service)} (service); "
          f"median difference B - A: total {statistics.median(b - a for a, b in pairs)} µs, service {statistics.median(b - a for a, b in service)} µs")
    for name in ("A", "B"):
        keys = results[name][0].keys()
        print(f"median {name}: {({k: statistics.median(x[k] for x in results[name]) for k in keys})} total {statistics.median(sum(x.values()) for x in results[name])} µs")
finally:
    for t in targets.values():
        try:
            os.kill(t.pid, signal.SIGCONT)
        except OSError:
            pass
    bench.stop_all()
