"""Where a replica's memory goes: RSS at rest split by mapping (assemblies, the runtime's executable
memory, native libraries, anonymous memory), the GC's own figures, then RSS per open stream with a tenth
and then all of --streams open, and again after --age seconds of streaming (what an open stream holds
as its answer grows). Jackcwf alone, with PostgreSQL, Redis and the fake upstream, as bench/bench.py
starts them; the build is BENCH_JACKCWF_DLL (bench/run.sh publishes it into bench/.publish).
    python3 bench/memory.py [--streams 1000] [--kind v1|chat|demo] [--age 60] [--gcdump PREFIX] [--env '{"DOTNET_X": "1"}'] [--top N]
--streams 0 stops after the reading at rest. --kind demo streams from the in-process demo model (one word a second, no upstream connection: for more
streams than the open-file limit allows through the upstream). --gcdump writes dotnet-gcdump snapshots
(dotnet-gcdump from ~/.dotnet/tools) at each step, to diff what the streams hold."""
import argparse, asyncio, collections, json, os, re, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench


def mappings(pid, by_file=False):
    """RSS (KiB) by kind of mapping, from /proc/<pid>/smaps (by_file: by mapped file instead)."""
    kinds, cur = collections.Counter(), None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            m = re.match(r"^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$", line)
            if m:
                name = m.group(1).strip()
                if by_file:
                    cur = os.path.basename(name) if name.startswith("/") and "doublemapper" not in name else None
                    continue
                cur = ("assemblies" if name.endswith(".dll") else "native libraries" if ".so" in name
                       else "executable memory (type data, JIT code)" if "doublemapper" in name
                       else "anonymous (GC heap, native)" if name == "" else "malloc heap" if name == "[heap]" else "other")
            elif line.startswith("Rss:") and cur is not None:
                kinds[cur] += int(line.split()[1])
    return kinds


def gc_figures(pid):
    out = os.path.join(tempfile.gettempdir(), f"jackcwf-counters-{pid}.json")
    subprocess.run([bench.dotnet_tool("dotnet-counters"), "collect", "-p", str(pid), "--counters", "System.Runtime",
                    "--duration", "00:00:03", "--format", "json", "-o", out], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        values = {}
        for e in json.load(open(out))["Events"]:
            values[e["name"] + ("/" + e["tags"] if e.get("tags") else "")] = e["value"]
    except (OSError, ValueError, KeyError):
        return ""
    heap = sum(v for k, v in values.items() if k.startswith("dotnet.gc.last_collection.heap.size"))
    committed = values.get("dotnet.gc.last_collection.memory.committed_size (By)", 0)
    return f"; GC committed {committed / 2**20:.1f} MiB, heap after the last GC {heap / 2**20:.1f} MiB"


def report(pid, what, gc, top=0):
    rss = bench.rss_kib(pid)
    parts = ", ".join(f"{k} {v / 1024:.1f}" for k, v in mappings(pid).most_common())
    threads = len(os.listdir(f"/proc/{pid}/task"))
    print(f"{what}: RSS {rss / 1024:.1f} MiB ({parts}); {threads} threads{gc_figures(pid) if gc else ''}", flush=True)
    if top:
        files = mappings(pid, by_file=True)
        print(f"  {len(files)} files mapped; the largest: " + ", ".join(f"{k} {v / 1024:.1f}" for k, v in files.most_common(top)), flush=True)
    return rss


def gcdump(pid, prefix, step):
    if prefix:
        subprocess.run([bench.dotnet_tool("dotnet-gcdump"), "collect", "-p", str(pid), "-o", f"{prefix}-{step}.gcdump"], stdout=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--kind", choices=["v1", "chat", "demo"], default="v1")
    ap.add_argument("--age", type=int, default=60, help="seconds of streaming before the last reading (0: none)")
    ap.add_argument("--gcdump", metavar="PREFIX")
    ap.add_argument("--gc", action="store_true", help="the GC's figures at each step (dotnet-counters)")
    ap.add_argument("--env", default="{}", help="extra environment for Jackcwf, as JSON")
    ap.add_argument("--top", type=int, default=0, metavar="N", help="at rest, also the N mapped files holding the most RSS")
    a = ap.parse_args()
    bench.SETTLE_STATS = False
    work = tempfile.mkdtemp(prefix="jackcwf-memory-")
    extra = {"DEMO_CHUNK_DELAY_MS": "1000", **json.loads(a.env)} if a.kind == "demo" else json.loads(a.env)
    try:
        up = bench.start_upstream(work)
        pg_port, pg_pid = bench.start_postgres(work)
        r_port, r_pid = bench.start_redis(work)
        jack = bench.start_jackcwf(work, up, pg_port, pg_pid, r_port, r_pid, extra)
        time.sleep(2)
        print(f"load average {os.getloadavg()[0]:.1f}", flush=True)
        report(jack.pid, "at rest", a.gc, a.top)
        if not a.streams:
            return
        gcdump(jack.pid, a.gcdump, "rest")
        if a.kind == "chat":
            def path():
                _, conv = bench.request(jack.base, "POST", "/api/conversations", {"model": "openai/" + bench.SLOW}, {"authorization": f"Bearer {jack.token}"})
                return f"/api/conversations/{conv['id']}/messages"
            kw = dict(path=path, body=json.dumps({"content": "hold this stream open"}), headers={"Authorization": f"Bearer {jack.token}"})
        elif a.kind == "demo":
            kw = dict(body=json.dumps({"model": "demo/echo", "stream": True, "messages": [{"role": "user", "content": " ".join(["word"] * 900)}]}))
        else:
            kw = {}
        held, loop = [], asyncio.new_event_loop()
        failed = loop.run_until_complete(bench.hold_streams(jack, a.streams // 10, held, **kw))
        time.sleep(3)
        low, n_low = report(jack.pid, f"{len(held)} {a.kind} streams", a.gc), len(held)
        gcdump(jack.pid, a.gcdump, "low")
        failed += loop.run_until_complete(bench.hold_streams(jack, a.streams - a.streams // 10, held, **kw))
        time.sleep(3)
        high = report(jack.pid, f"{len(held)} {a.kind} streams", a.gc)
        gcdump(jack.pid, a.gcdump, "high")
        n = max(1, len(held) - n_low)
        print(f"per open stream: {(high - low) / n:.1f} KiB ({n_low} -> {len(held)} streams, {len(failed)} failed)", flush=True)
        if a.age:
            time.sleep(a.age)
            aged = report(jack.pid, f"{len(held)} {a.kind} streams, {a.age} s later", a.gc)
            gcdump(jack.pid, a.gcdump, "aged")
            print(f"per open stream after {a.age} s more: {(aged - low) / n:.1f} KiB; load average {os.getloadavg()[0]:.1f}", flush=True)
        for w in held:
            w.close()
    finally:
        bench.stop_all()


if __name__ == "__main__":
    main()
