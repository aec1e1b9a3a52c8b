#!/usr/bin/env python3
"""What Jackcwf keeps in Redis, in bytes per unit of work: per request in the limits' sliding windows,
per finished chat answer in the generation event log, per running one.

  python3 bench/redis_memory.py                      # one replica as bench/run.sh starts it (Release build or BENCH_JACKCWF_DLL)
  python3 bench/redis_memory.py --requests 20000 --messages 2000

Starts the fake upstream, PostgreSQL, Redis and one replica as bench.py does (the benchmark's limits:
1,000,000 requests a minute, so no window refuses), then, each step measured alone:
  1. /v1 requests (wrk, non-streamed): the request windows' members and bytes (`MEMORY USAGE` of every
     `jackcwf:limits:*` key, exact: SAMPLES 0), per request;
  2. the same windows as the product's defaults keep them (300 a minute: at most 300 members a key, which
     Redis stores as a skiplist past `zset-max-listpack-entries`, 128 by default), per member;
  3. JSON chat messages with the demo model and with the OpenAI upstream (50 chunks): the event log's
     finished streams (`jackcwf:gen:*`, kept 15 s after the answer ends: only those still there are counted), per answer;
  4. chat streams held open on the slow upstream (one chunk a second): the running streams, per stream;
  5. answers as a model paces them (the demo model at 25 ms a word, --words words): finished streams, per answer;
  6. with RESPONSE_CACHE=exact (off by default), the cached answers' keys (`jackcwf:rc:*`), per answer;
and `used_memory` (INFO memory) around each step, which includes Redis's own allocations for the keys (and moves as
finished streams leave after 15 s).
Prints a line per step, then the raw figures as JSON (also written to --out).
"""
import argparse, asyncio, json, os, signal, subprocess, sys, tempfile, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--seconds", type=int, default=4, help="wrk seconds of /v1 requests (step 1)")
ap.add_argument("--messages", type=int, default=300, help="JSON chat messages per model (step 3; a finished answer's stream stays 15 s, so keep it to a few seconds of messages)")
ap.add_argument("--streams", type=int, default=200, help="chat streams held open (step 4)")
ap.add_argument("--words", type=int, default=400, help="words of each paced answer (step 5)")
ap.add_argument("--paced", type=int, default=20, help="paced answers, sent together (step 5)")
ap.add_argument("--out", default=None, help="raw figures as JSON")
args = ap.parse_args()


def cli(port, *a):
    return subprocess.run(["redis-cli", "-p", str(port), *a], capture_output=True, text=True, check=True).stdout


def used_memory(port):
    return int(next(l.split(":")[1] for l in cli(port, "INFO", "memory").splitlines() if l.startswith("used_memory:")))


def keys(port, pattern):
    return [k for k in cli(port, "--scan", "--pattern", pattern).splitlines() if k]


def usage(port, pattern):
    """(keys, bytes, elements) over the keys matching `pattern`: MEMORY USAGE … SAMPLES 0 (every element counted)."""
    live = total = elements = 0
    for k in keys(port, pattern):
        size = int(cli(port, "MEMORY", "USAGE", k, "SAMPLES", "0").strip() or 0)
        if size == 0:
            continue  # gone since the scan (a finished answer's stream stays 15 s)
        live += 1
        total += size
        kind = cli(port, "TYPE", k).strip()
        elements += int(cli(port, {"zset": "ZCARD", "stream": "XLEN", "hash": "HLEN", "set": "SCARD", "list": "LLEN"}.get(kind, "STRLEN"), k).strip() or 0)
    return live, total, elements


def encoding(port, pattern):
    ks = keys(port, pattern)
    return sorted({cli(port, "OBJECT", "ENCODING", k).strip() for k in ks})


work = tempfile.mkdtemp(prefix="jackcwf-redismem-")
results = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "load_start": os.getloadavg()[0]}
try:
    up = bench.start_upstream(work)
    pg_port, pg_pid = bench.start_postgres(work)
    redis_port, redis_pid = bench.start_redis(work)
    jack = bench.start_jackcwf(work, up, pg_port, pg_pid, redis_port, redis_pid)
    r = redis_port
    bench.log(f"Redis {cli(r, 'INFO', 'server').split('redis_version:')[1].splitlines()[0]}, "
              f"zset-max-listpack-entries {cli(r, 'CONFIG', 'GET', 'zset-max-listpack-entries').split()[-1]}")

    # 1. /v1 requests: the user's and the key's windows, one member each per request.
    cli(r, "FLUSHALL")
    before = used_memory(r)
    w = bench.wrk(jack, bench.FAST, False, 16, args.seconds)
    n, b, members = usage(r, "jackcwf:limits:rate:*")
    after = used_memory(r)
    results["v1"] = {"requests": w["requests"], "window_keys": n, "members": members, "bytes": b, "used_memory_delta": after - before,
                     "encoding": encoding(r, "jackcwf:limits:rate:*")}
    bench.log(f"/v1: {w['requests']:,} requests, {members:,} window members in {n} keys, {b:,} bytes "
              f"({b / w['requests']:.0f} B a request, {b / max(members, 1):.0f} B a member); used_memory +{after - before:,}")

    # 2. The defaults' windows: 300 members at most a key (what a user at the default limit keeps), and 100 (under
    # zset-max-listpack-entries), with members as the store writes them (12 bytes) and as it wrote them until
    # 2026-12-06 (a GUID's 32 hex characters); the time in ms as the score.
    for count in (100, 300):
        for form, member in (("12 bytes", lambda: '"' + "".join(f"\\x{b:02x}" for b in os.urandom(12)) + '"'),
                             ("32 hex characters", lambda: os.urandom(16).hex())):
            cli(r, "FLUSHALL")
            now = int(time.time() * 1000)
            cmd = "\n".join(f"ZADD probe {now + i} {member()}" for i in range(count)) + "\n"
            subprocess.run(["redis-cli", "-p", str(r)], input=cmd, capture_output=True, text=True, check=True)
            _, b, m = usage(r, "probe")
            results[f"window_{count}_{form.split()[0]}"] = {"members": m, "bytes": b, "encoding": encoding(r, "probe")}
            bench.log(f"a window of {m} members of {form}: {b:,} bytes ({b / m:.0f} B a member, {encoding(r, 'probe')[0]})")

    # 3. Finished chat answers: their event-log streams stay 5 minutes.
    for label, model in (("demo", "demo/echo"), ("openai", "openai/" + bench.FAST)):
        cli(r, "FLUSHALL")
        before = used_memory(r)
        failures = bench.send_chat_messages(jack, model, args.messages, 8)
        time.sleep(1)
        n, b, entries = usage(r, "jackcwf:gen:*")
        after = used_memory(r)
        done = args.messages - len(failures)
        results[f"chat_{label}"] = {"messages": done, "streams": n, "entries": entries, "bytes": b, "used_memory_delta": after - before,
                                    "encoding": encoding(r, "jackcwf:gen:*")}
        bench.log(f"chat, {label}: {done:,} answers, {n:,} event-log streams still there, {entries:,} entries, {b:,} bytes "
                  f"({b / max(n, 1):,.0f} B an answer); used_memory +{after - before:,}")

    # 4. Running chat streams (the slow upstream: one chunk a second), held for a few seconds.
    cli(r, "FLUSHALL")
    before = used_memory(r)
    auth = {"authorization": f"Bearer {jack.token}"}
    convs = []
    for _ in range(args.streams):
        _, c = bench.request(jack.base, "POST", "/api/conversations", {"model": "openai/" + bench.SLOW}, auth)
        convs.append(c["id"])
    held, it = [], iter(convs)
    th = threading.Thread(target=lambda: asyncio.run(bench.hold_streams(
        jack, args.streams, held, path=lambda: f"/api/conversations/{next(it)}/messages", body=json.dumps({"content": "words"}), headers=auth)), daemon=True)
    th.start()
    bench.wait_until(lambda: len(held) >= args.streams, 120, f"{args.streams} chat streams")
    time.sleep(5)
    n, b, entries = usage(r, "jackcwf:gen:*")
    after = used_memory(r)
    results["running"] = {"streams": args.streams, "keys": n, "entries": entries, "bytes": b, "used_memory_delta": after - before}
    bench.log(f"running: {args.streams} chat streams held 5 s, {n} event-log streams, {entries:,} entries, {b:,} bytes "
              f"({b / max(n, 1):,.0f} B a stream); used_memory +{after - before:,}")
    # The held streams' replica stops: its answers would go on writing to the log.
    os.killpg(jack.pid, signal.SIGKILL)

    def replica(name, env):
        """Another replica on the same PostgreSQL and Redis (the one before it stopped), Redis emptied."""
        os.makedirs(os.path.join(work, name))
        t = bench.start_jackcwf(os.path.join(work, name), up, pg_port, pg_pid, redis_port, redis_pid, env)
        cli(r, "FLUSHALL")
        return t

    def answer_each(target, contents):
        """One JSON chat message per content, each in a conversation of its own, all sent at once; the statuses."""
        a = {"authorization": f"Bearer {target.token}"}
        convs = [bench.request(target.base, "POST", "/api/conversations", {"model": "demo/echo"}, a)[1]["id"] for _ in contents]
        return bench.answer_at_once(target, convs, contents, timeout=300)

    # 5. Answers as a model streams them: the demo model at its default pace (25 ms a word, about 40 words a second)
    # answering --words words, so the log holds an entry per 40 ms batch, as it does for a real model's answer.
    paced = replica("paced", {"DEMO_CHUNK_DELAY_MS": "25"})
    before = used_memory(r)
    content = " ".join(f"word{i}" for i in range(args.words))
    statuses = answer_each(paced, [content] * args.paced)
    n, b, entries = usage(r, "jackcwf:gen:*")
    after = used_memory(r)
    results["paced"] = {"answers": sum(1 for x in statuses if x < 300), "words": args.words, "text_bytes": len(content), "streams": n,
                        "entries": entries, "bytes": b, "used_memory_delta": after - before}
    bench.log(f"paced: {n} answers of {args.words} words ({len(content):,} characters) at 25 ms a word, {entries / max(n, 1):.0f} entries "
              f"and {b / max(n, 1):,.0f} B an answer; used_memory +{after - before:,}")

    # 6. The response cache (RESPONSE_CACHE=exact, off by default): each answer stored for RESPONSE_CACHE_TTL_SECONDS.
    os.killpg(paced.pid, signal.SIGKILL)
    cached = replica("cached", {"RESPONSE_CACHE": "exact"})
    before = used_memory(r)
    statuses = answer_each(cached, [f"{i} {content}" for i in range(args.paced)])
    n, b, _ = usage(r, "jackcwf:rc:*")
    after = used_memory(r)
    results["response_cache"] = {"answers": sum(1 for x in statuses if x < 300), "text_bytes": len(content), "keys": n, "bytes": b,
                                 "used_memory_delta": after - before}
    bench.log(f"response cache: {n} cached answers of {len(content):,} characters, {b / max(n, 1):,.0f} B each in Redis; used_memory +{after - before:,}")
    results["load_end"] = os.getloadavg()[0]
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)
    print(json.dumps(results, indent=2))
finally:
    bench.stop_all()
