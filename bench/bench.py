"""Side-by-side benchmark: Jackcwf's /v1 (full pipeline), a bare YARP hop and Portkey, all in front of
the same fake OpenAI upstream on loopback, driven in interleaved rounds. Started by bench/run.sh,
which builds and installs what this needs; see bench/README.md for what each figure means.

CPU per request is read from /proc (utime + stime) of the target process and, for Jackcwf, of its
PostgreSQL (postmaster, its live backends and the ones it reaped) and Redis, before and after each
wrk run, divided by the requests served. Latency figures are wrk's percentiles minus those of the
same run straight against the upstream ("added")."""
import argparse, asyncio, contextlib, base64, datetime, http.client, json, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, threading, time, urllib.parse, uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TICK = os.sysconf("SC_CLK_TCK")
FAST, DELAYED, SLOW = "gpt-4o-mini", "gpt-4o", "slow-stream"  # upstream: 0 ms, 20 ms, one chunk a second
PROCS = []
PAUSED = set()  # process groups stopped with SIGSTOP (the extra replicas between their runs)
REPLICAS = 3  # the coordination figure: this many replicas sharing PostgreSQL and Redis, against one
REPLICA_SCENARIOS = ("nonstream16", "nonstream64")
THIRD = "Jackcwf /v1, a third of the clients"  # one replica carrying one group member's load (non-streamed only)
SETTLE_STATS = True  # wait for PostgreSQL's statistics before reading them (off in --quick)


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def die(msg):
    print(f"ERROR: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def dotnet_tool(name):
    """The path of a dotnet diagnostics tool (dotnet-trace, dotnet-gcdump, dotnet-counters: the benchmarks' only
    extra tools), or stop saying how to install it."""
    path = shutil.which(name) or os.path.expanduser(f"~/.dotnet/tools/{name}")
    if not os.path.exists(path):
        die(f"{name} is missing: dotnet tool install -g {name}")
    return path


# ---- /proc ----------------------------------------------------------------------------------------

def stat_fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def cpu_seconds(pid, with_children=False):
    f = stat_fields(pid)
    total = int(f[11]) + int(f[12])
    if with_children:
        total += int(f[13]) + int(f[14])
    return total / TICK


def tree_cpu_seconds(pid):
    """A process, its live children and the children it has reaped (PostgreSQL's backends)."""
    total = cpu_seconds(pid, with_children=True)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                f = stat_fields(int(entry))
                if int(f[1]) == pid:
                    total += (int(f[11]) + int(f[12])) / TICK
            except (FileNotFoundError, ProcessLookupError, IndexError):
                pass
    return total


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def free_port():
    # Below the ephemeral range, so nothing outgoing can take it between check and bind.
    for _ in range(500):
        port = 20000 + int.from_bytes(os.urandom(2), "big") % 9000
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    die("no free port between 20000 and 29000")


# ---- processes ------------------------------------------------------------------------------------

def spawn(name, cmd, env=None, cwd=None, work=None):
    out = open(os.path.join(work, f"{name}.log"), "w")
    p = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    PROCS.append((name, p))
    return p


def pause(pid):
    os.killpg(pid, signal.SIGSTOP)
    PAUSED.add(pid)


def resume(pid):
    os.killpg(pid, signal.SIGCONT)
    PAUSED.discard(pid)


def stop_all():
    for pid in list(PAUSED):  # a stopped process would hold its SIGTERM until the end of time
        try:
            resume(pid)
        except Exception:
            pass
    for name, p in reversed(PROCS):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(timeout=20)
            except Exception:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except Exception:
                    pass
    PROCS.clear()  # stopped: a later stop_all (the capacity check's next run) does not signal their ids again


def request(base, method, path, body=None, headers=None, timeout=60, conn=None):
    """One HTTP call, its response read to the end. Over `conn` (an http.client.HTTPConnection to `base`,
    kept by the caller) when given, as browsers and SDKs keep an HTTP/1.1 connection; else over a new
    connection, closed after it."""
    u = urllib.parse.urlparse(base)
    c = conn if conn is not None else http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    h = {"content-type": "application/json", **(headers or {})}
    payload = json.dumps(body) if body is not None else None
    try:
        try:
            c.request(method, path, payload, h)
            r = c.getresponse()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            if conn is None:
                raise
            c.close()  # the server closed the kept connection while it was idle: once more on a new one
            c.request(method, path, payload, h)
            r = c.getresponse()
        data = r.read()
        try:
            return r.status, (json.loads(data) if data else None)
        except ValueError:
            return r.status, data
    finally:
        if conn is None:
            c.close()


def wait_until(check, seconds, what, log_file=None):
    """Waits for check() to hold; otherwise stops with what the process wrote last (log_file), which says why."""
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        try:
            if check():
                return time.perf_counter() - start
        except OSError:
            pass
        time.sleep(0.02)
    tail = ""
    if log_file and os.path.exists(log_file):
        with open(log_file, errors="replace") as f:
            tail = "\n  last lines of " + log_file + ":\n" + "".join("  " + l[:400] for l in f.readlines()[-15:])
    die(f"{what} did not answer within {seconds} s{tail}")


# ---- targets --------------------------------------------------------------------------------------

class Target:
    def __init__(self, name, base, path, headers, model_prefix, pid, extra_pids=None):
        self.name, self.base, self.path, self.headers = name, base, path, headers
        self.model_prefix, self.pid, self.extra_pids = model_prefix, pid, extra_pids or {}
        self.ready_s = None
        self.rest_rss_kib = None

    def body(self, model, stream):
        b = {"model": self.model_prefix + model, "messages": [{"role": "user", "content": "Say fifty words."}]}
        if stream:
            b["stream"] = True
        return json.dumps(b, separators=(",", ":"))

    def cpu(self):
        values = {"service": cpu_seconds(self.pid)}
        for name, (pid, tree) in self.extra_pids.items():
            values[name] = tree_cpu_seconds(pid) if tree else cpu_seconds(pid)
        return values


def start_upstream(work):
    port = free_port()
    p = spawn("upstream", ["node", os.path.join(HERE, "fake-upstream.mjs"), "--port", str(port), "--delay-model", DELAYED, "--delay-ms", "20"], work=work)
    wait_until(lambda: request(f"http://127.0.0.1:{port}", "GET", "/v1/models")[0] == 200, 30, "the fake upstream")
    return Target("direct", f"http://127.0.0.1:{port}", "/v1/chat/completions", {"Authorization": "Bearer sk-bench"}, "", p.pid)


def start_yarp(work, upstream):
    port = free_port()
    dll = os.path.join(HERE, "BareHop", "bin", "Release", "net10.0", "BareHop.dll")
    start = time.perf_counter()
    p = spawn("yarp", ["dotnet", dll], {"ASPNETCORE_URLS": f"http://127.0.0.1:{port}", "BENCH_UPSTREAM": upstream.base + "/", "DOTNET_gcServer": "0"}, work=work)
    wait_until(lambda: request(f"http://127.0.0.1:{port}", "GET", "/v1/models")[0] == 200, 120, "the bare YARP hop")
    t = Target("bare YARP hop", f"http://127.0.0.1:{port}", "/v1/chat/completions", {"Authorization": "Bearer sk-bench"}, "", p.pid)
    t.ready_s = time.perf_counter() - start
    return t


def start_portkey(work, upstream):
    port = free_port()
    script = os.path.join(HERE, "portkey", "node_modules", "@portkey-ai", "gateway", "build", "start-server.js")
    start = time.perf_counter()
    p = spawn("portkey", ["node", script, f"--port={port}", "--headless"], work=work)
    headers = {"Authorization": "Bearer sk-bench", "x-portkey-provider": "openai", "x-portkey-custom-host": upstream.base + "/v1"}
    t = Target("Portkey 1.15.2", f"http://127.0.0.1:{port}", "/v1/chat/completions", headers, "", p.pid)
    wait_until(lambda: request(t.base, "POST", t.path, json.loads(t.body(FAST, False)), headers)[0] == 200, 120, "Portkey")
    t.ready_s = time.perf_counter() - start
    return t


def start_postgres(work):
    bins = sorted(d for d in os.listdir("/usr/lib/postgresql") if os.path.isdir(f"/usr/lib/postgresql/{d}/bin"))
    if not bins:
        die("PostgreSQL is not installed (apt-get install postgresql)")
    bin_dir = f"/usr/lib/postgresql/{bins[-1]}/bin"
    port = free_port()
    data = os.path.join(work, "pg")
    os.makedirs(data)
    shutil.chown(data, "postgres", "postgres")
    os.chmod(work, 0o755)
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run(run_as + [f"{bin_dir}/initdb", "-D", f"{data}/data", "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale"],
                   check=True, stdout=subprocess.DEVNULL)
    # Durable settings (fsync and synchronous commit on), as a production database runs.
    subprocess.run(run_as + [f"{bin_dir}/pg_ctl", "-D", f"{data}/data", "-l", f"{data}/pg.log", "-w", "-t", "60", "-o",
                             f"-p {port} -c listen_addresses=127.0.0.1 -k {data} -c max_connections=300", "start"],
                   check=True, stdout=subprocess.DEVNULL)
    with open(f"{data}/data/postmaster.pid") as f:
        pid = int(f.readline())
    PROCS.append(("postgres", type("PgHandle", (), {"pid": pid, "poll": lambda self: None,
                                                   "wait": lambda self, timeout=None: subprocess.run(run_as + [f"{bin_dir}/pg_ctl", "-D", f"{data}/data", "-m", "fast", "-w", "stop"], stdout=subprocess.DEVNULL)})()))
    return port, pid


def start_redis(work):
    port = free_port()
    p = spawn("redis", ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", work], work=work)
    wait_until(lambda: socket.create_connection(("127.0.0.1", port), 1).close() is None, 30, "Redis")
    return port, p.pid


def start_jackcwf(work, upstream, pg_port, pg_pid, redis_port, redis_pid, extra_env=None):
    port = free_port()
    # run.sh publishes it as the Dockerfile does (for this platform, ReadyToRun) except with --quick.
    dll = os.path.abspath(os.environ.get("BENCH_JACKCWF_DLL") or os.path.join(ROOT, "src", "Jackcwf.Api", "bin", "Release", "net10.0", "Jackcwf.Api.dll"))
    if not os.path.exists(dll):
        die(f"{dll} does not exist: build it (dotnet build src/Jackcwf.Api -c Release) or set BENCH_JACKCWF_DLL to a Jackcwf.Api.dll (or to a single-file publish's executable)")
    env = {
        "ASPNETCORE_URLS": f"http://127.0.0.1:{port}",
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{pg_port}/postgres",
        "REDIS_URL": f"127.0.0.1:{redis_port}",
        "OPENAI_API_KEY": "sk-bench",
        "OPENAI_BASE_URL": upstream.base + "/v1",
        "Models__Catalog__20__Id": "openai/" + SLOW,
        "RATE_LIMIT_USER_PER_MINUTE": "1000000",
        "RATE_LIMIT_KEY_PER_MINUTE": "1000000",
        "MAX_CONCURRENT_GENERATIONS": "10000",
        # One benchmark user holds every open stream: the per-user caps are lifted.
        "MAX_CONCURRENT_STREAMS": "10000",
        "MAX_MESSAGES_PER_CONVERSATION": "1000000",
        "SHUTDOWN_DRAIN_DELAY_SECONDS": "0",
        # The chat figure is the demo model "with no delay" (issue 14's definition): the default 25 ms
        # between words would leave the service idle between messages and bill its wake-ups to each one.
        "DEMO_CHUNK_DELAY_MS": "0",
        "LOG_FORMAT": "json",
        # The key ring in PostgreSQL is encrypted with it (required outside Development).
        "DATA_PROTECTION_KEY": base64.b64encode(os.urandom(32)).decode(),
        **(extra_env or {}),
    }
    os.makedirs(os.path.join(work, "jackcwf"))
    base = f"http://127.0.0.1:{port}"

    def start():
        began = time.perf_counter()
        p = spawn("jackcwf", ["dotnet", dll] if dll.endswith(".dll") else [dll], env, cwd=os.path.join(work, "jackcwf"), work=work)
        wait_until(lambda: request(base, "GET", "/health/ready")[0] == 200, 180, "Jackcwf", os.path.join(work, "jackcwf.log"))
        return p, time.perf_counter() - began, cpu_seconds(p.pid)

    def stop(p):
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(timeout=60)

    # The first start creates the schema (every migration on an empty database); the one measured is
    # a restart, as a replica starts once the schema exists.
    p, first_ready, first_cpu = start()
    stop(p)
    p, ready, ready_cpu = start()
    email, password = f"bench-{uuid.uuid4().hex[:8]}@example.com", "Bench-Passw0rd-1"
    status, _ = request(base, "POST", "/api/auth/register", {"email": email, "password": password})
    if status >= 300:
        die(f"registering the benchmark user failed ({status})")
    _, tokens = request(base, "POST", "/api/auth/login", {"email": email, "password": password})
    token = tokens["accessToken"]
    _, key = request(base, "POST", "/api/keys", {"name": "bench"}, {"authorization": f"Bearer {token}"})
    t = Target("Jackcwf /v1", base, "/v1/chat/completions", {"Authorization": f"Bearer {key['key']}"}, "openai/", p.pid,
               {"postgresql": (pg_pid, True), "redis": (redis_pid, False)})
    t.ready_s, t.ready_cpu_s, t.first_ready_s, t.first_ready_cpu_s = ready, ready_cpu, first_ready, first_cpu
    t.token = token
    t.pg_port, t.redis_port = pg_port, redis_port
    t.env, t.dll = env, dll
    t.proc = p

    def restart():
        """A fresh process on the same database, Redis and key ring (the token and the API key stay valid)."""
        stop(t.proc)
        t.proc = start()[0]
        t.pid = t.proc.pid
        time.sleep(2)
        return rss_kib(t.pid)
    t.restart = restart
    return t


class ReplicaGroup(Target):
    """Jackcwf replicas sharing one PostgreSQL and one Redis: the single-replica target and `extras` more,
    started with its settings. Load goes to all of them (wrk splits its clients across `bases`); CPU is the
    replicas' together, plus PostgreSQL's and Redis's. Between their own runs the extra replicas are
    stopped (SIGSTOP), so their idle timers cost nothing in any other target's figures, the single
    replica's included: that one is a one-replica deployment while it is measured alone."""

    def __init__(self, name, first, extras):
        super().__init__(name, first.base, first.path, first.headers, first.model_prefix, first.pid, first.extra_pids)
        self.first, self.extras = first, extras  # extras: [(pid, base)]
        self.bases = [first.base] + [b for _, b in extras]
        self.pids = [first.pid] + [pid for pid, _ in extras]
        self.pg_port, self.redis_port = getattr(first, "pg_port", None), getattr(first, "redis_port", None)
        self.nonstream_only = True  # the coordination figure: non-streamed scenarios only

    def cpu(self):
        values = super().cpu()
        values["service"] = sum(cpu_seconds(pid) for pid in self.pids)
        return values

    def replica_cpu(self):
        return [cpu_seconds(pid) for pid in self.pids]

    def __enter__(self):
        for pid, _ in self.extras:
            resume(pid)
        return self

    def __exit__(self, *exc):
        for pid, _ in self.extras:
            pause(pid)


def start_replicas(work, first, count):
    """`count` more replicas of `first`, with its settings (the same API key works on every one: same
    PostgreSQL, Redis and data protection key), each on its own port and folder, started together;
    returned paused, as a group with `first`."""
    bases, procs = {first.base}, []
    for i in range(count):
        base = first.base
        while base in bases:
            base = f"http://127.0.0.1:{free_port()}"
        bases.add(base)
        os.makedirs(os.path.join(work, f"jackcwf-{i + 2}"))
        p = spawn(f"jackcwf-{i + 2}", ["dotnet", first.dll], {**first.env, "ASPNETCORE_URLS": base},
                  cwd=os.path.join(work, f"jackcwf-{i + 2}"), work=work)
        procs.append((p.pid, base))
    for pid, base in procs:
        wait_until(lambda: request(base, "GET", "/health/ready")[0] == 200, 180, f"Jackcwf replica {base}")
        # Its first /v1 request looks the key up in PostgreSQL, as a replica does after a restart.
        status, body = request(base, "POST", first.path, json.loads(first.body(FAST, False)), first.headers)
        if status != 200:
            die(f"the replica at {base} refused the benchmark's key ({status}: {body})")
        pause(pid)
    return ReplicaGroup(f"{first.name}, {count + 1} replicas", first, procs)


def start_hop_replicas(work, upstream, first, count):
    """`count` more bare YARP hops beside `first`, returned paused, as a group with it: the control for the
    coordination figure. The hops share nothing, so what the group costs per request beyond one hop is
    the machine's own (three processes time-sharing its cores, each carrying a third of the load), not
    coordination."""
    procs = []
    for _ in range(count):
        hop = start_yarp(work, upstream)
        pause(hop.pid)
        procs.append((hop.pid, hop.base))
    return ReplicaGroup(f"{first.name}, {count + 1} replicas", first, procs)


# ---- measurements ---------------------------------------------------------------------------------

def wrk(target, model, stream, clients, seconds):
    """One wrk run of `clients` connections; against a replica group, one wrk process per replica
    started together, the clients split between them (16 = 6 + 5 + 5): the same total load as against
    one replica. p50 is then the median of the processes' p50s, p99 the highest of their p99s."""
    env = {"BENCH_BODY": target.body(model, stream), "BENCH_HEADERS": "|".join(f"{k}: {v}" for k, v in target.headers.items())}
    bases = getattr(target, "bases", [target.base])
    shares = [clients // len(bases) + (1 if i < clients % len(bases) else 0) for i in range(len(bases))]
    def args(base, n):
        return ["wrk", f"-t{min(2, n) if len(bases) == 1 else 1}", f"-c{n}", f"-d{seconds}s", "--latency", "--timeout", "10s",
                "-s", os.path.join(HERE, "post.lua"), base + target.path]
    redis_port = getattr(target, "redis_port", None)
    per_replica = hasattr(target, "replica_cpu")
    redis_before = redis_commands(target) if redis_port else None
    before = target.cpu()
    replicas_before = target.replica_cpu() if per_replica else None
    procs = [subprocess.Popen(args(b, n), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env={**os.environ, **env})
             for b, n in zip(bases, shares) if n > 0]
    outs = [p.communicate()[0] for p in procs]
    after = target.cpu()
    replicas_after = target.replica_cpu() if per_replica else None
    redis_after = redis_commands(target) if redis_port else None
    parsed = [parse_wrk(o) for o in outs]
    requests_ = sum(x["requests"] for x in parsed)
    cpu = {k: (after[k] - before[k]) / requests_ * 1e6 if requests_ else None for k in before}
    p50s, p99s = [x["p50_ms"] for x in parsed if x["p50_ms"] is not None], [x["p99_ms"] for x in parsed if x["p99_ms"] is not None]
    result = {"requests": requests_, "rps": requests_ / seconds, "p50_ms": med(p50s), "p99_ms": max(p99s) if p99s else None,
              "errors": sum(x["errors"] for x in parsed), "cpu_us": cpu,
              "redis_commands_per_request": (redis_after - redis_before) / requests_ if redis_port and requests_ else None}
    if len(bases) > 1:
        result["replica_requests"] = [x["requests"] for x in parsed]
        result["replica_service_cpu_s"] = [a_ - b for a_, b in zip(replicas_after, replicas_before)]
    return result


def parse_wrk(out):
    lines = out.splitlines()
    done = [l for l in lines if "requests in" in l]
    requests_ = int(done[0].split()[0]) if done else 0
    def pct(p):
        row = [l for l in lines if l.strip().startswith(p)]
        return to_ms(row[0].split()[1]) if row else None
    errors = sum(int(x) for l in lines if "Socket errors" in l for x in l.replace(",", " ").split() if x.isdigit())
    non2xx = int([l for l in lines if l.startswith("NON2XX")][0].split()[1]) if any(l.startswith("NON2XX") for l in lines) else requests_
    return {"requests": requests_, "p50_ms": pct("50%"), "p99_ms": pct("99%"), "errors": errors + non2xx}


def to_ms(text):
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float(text)


def first_token_ms(target, model):
    u = urllib.parse.urlparse(target.base)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    start = time.perf_counter()
    c.request("POST", target.path, target.body(model, True), {"content-type": "application/json", **target.headers})
    r = c.getresponse()
    first = None
    for line in r:
        if not line.startswith(b"data:") or line.startswith(b"data: [DONE]"):
            continue
        try:
            choices = json.loads(line[5:]).get("choices") or []
        except ValueError:
            continue
        if first is None and choices and (choices[0].get("delta") or {}).get("content"):
            first = (time.perf_counter() - start) * 1000
    c.close()
    return first


async def hold_streams(target, count, held, model=SLOW, path=None, body=None, headers=None):
    u = urllib.parse.urlparse(target.base)
    payload = (body or target.body(model, True)).encode()
    hdrs = headers or target.headers

    def head(p):
        return (f"POST {p} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nContent-Type: application/json\r\n"
                f"Accept: text/event-stream\r\nContent-Length: {len(payload)}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n").encode()

    failures = []

    async def one():
        reader, writer = await asyncio.open_connection(u.hostname, u.port)
        # `path` may be a function giving each stream its own path (a chat stream in its own conversation).
        writer.write(head(path() if callable(path) else (path or target.path)) + payload)
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 120)
        if b" 200 " not in status:
            writer.close()
            raise RuntimeError(f"{target.name}: stream answered {status.strip()!r}")
        held.append(writer)
    sem = asyncio.Semaphore(100)
    async def guarded():
        async with sem:
            try:
                await one()
            except Exception as e:  # counted and reported: a target that cannot hold them all says how many it held
                failures.append(str(e) or type(e).__name__)
    await asyncio.gather(*(guarded() for _ in range(count)))
    return failures


def memory_per_stream(target, low, high, hold_seconds=5, settle_seconds=2, **kwargs):
    """RSS with `low` streams open, then `high` (2 s after they opened); then the CPU (% of one core, per
    process) spent holding the `high` streams for `hold_seconds`, from `settle_seconds` after they opened
    (each stream gets one chunk a second from the slow model)."""
    held = []
    loop = asyncio.new_event_loop()
    try:
        failed = loop.run_until_complete(hold_streams(target, low, held, **kwargs))
        time.sleep(2)
        rss_low, held_low = rss_kib(target.pid), len(held)
        opened = time.perf_counter()
        failed += loop.run_until_complete(hold_streams(target, high - low, held, **kwargs))
        open_s = time.perf_counter() - opened
        time.sleep(2)
        rss_high, held_high = rss_kib(target.pid), len(held)
        time.sleep(max(0, settle_seconds - 2))
        if failed:
            log(f"{target.name}: {len(failed)} of {high} streams were refused or failed, e.g. {failed[0]}")
        before = target.cpu()
        time.sleep(hold_seconds)
        after = target.cpu()
        cpu = {k: (after[k] - before[k]) / hold_seconds * 100 for k in before}
        return {"streams": [held_low, held_high], "asked": [low, high], "failed": len(failed), "rss_kib": [rss_low, rss_high],
                "kib_per_stream": (rss_high - rss_low) / (held_high - held_low) if held_high > held_low else None,
                "open_s": open_s, "held_cpu_percent": cpu}
    finally:
        for w in held:
            w.close()
        loop.close()
        time.sleep(1)


def chat_cpu_per_message(target, model, messages, workers=8, warmup=0, new_connection_each=False, stream=False):
    """CPU per chat message (JSON answers). `warmup` messages are sent first and not measured: until the
    JIT has tiered the chat path's code up (1,000-1,500 messages), a message costs twice as much or more.
    Each client keeps its connection (`send_chat_messages`) unless `new_connection_each`; with `stream`, each
    answer is a Server-Sent Events stream read to its end (as the web app asks) instead of JSON."""
    if warmup:
        send_chat_messages(target, model, warmup, workers, new_connection_each=new_connection_each, stream=stream)
    conversations = new_conversations(target, model, messages)
    # The CPU is read last before the messages and first after them: pg_counters waits for PostgreSQL's
    # statistics to settle (11 s with SETTLE_STATS), and that wait's idle CPU (timers, autovacuum after the
    # warm-up's messages) is not the messages'. Runs before 2026-12-06 08:00 UTC counted it in.
    db_before, redis_before = pg_counters(target), redis_commands(target)
    before = target.cpu()
    failures = send_chat_messages(target, model, messages, workers, conversations, new_connection_each, stream)
    time.sleep(1.5)  # the usage ledger's batch (1 s) belongs to these messages
    after = target.cpu()
    redis_after = redis_commands(target)
    db_after = pg_counters(target)
    done = messages - len(failures)
    per = lambda a_, b: (a_ - b) / done if done else None
    return {"messages": done, "failures": len(failures), "cpu_us": {k: (after[k] - before[k]) / done * 1e6 if done else None for k in before},
            "pg_per_message": {k: per(db_after[k], db_before[k]) for k in db_before}, "redis_commands_per_message": per(redis_after, redis_before)}


def median_of_rounds(rounds):
    """One chat figure from rounds of `chat_cpu_per_message`: messages and failures summed, every per-message figure the median."""
    per = lambda key: {k: med([r[key][k] for r in rounds]) for k in rounds[0][key]}
    return {"messages": sum(r["messages"] for r in rounds), "failures": sum(r["failures"] for r in rounds), "rounds": len(rounds),
            "cpu_us": per("cpu_us"), "pg_per_message": per("pg_per_message"),
            "redis_commands_per_message": med([r["redis_commands_per_message"] for r in rounds])}


def new_conversations(target, model, messages):
    """One conversation for every 25 messages."""
    conversations = []
    for _ in range(max(1, messages // 25)):
        status, conv = request(target.base, "POST", "/api/conversations", {"model": model}, {"authorization": f"Bearer {target.token}"})
        if status >= 300:
            die(f"creating a conversation failed ({status}: {conv})")
        conversations.append(conv["id"])
    return conversations


def send_chat_messages(target, model, messages, workers, conversations=None, new_connection_each=False, stream=False):
    """Sends `messages` JSON chat messages from `workers` clients, 25 to a conversation; returns the failed statuses.
    Each client keeps one HTTP/1.1 connection for all its messages, as the web app's fetches and the SDKs do
    (and wrk for the /v1 figures); `new_connection_each` opens and closes one per message instead, which
    costs the service an accept and a close per message (bench/README.md, "Where a chat message's service CPU goes")."""
    auth = {"authorization": f"Bearer {target.token}"}
    conversations = conversations or new_conversations(target, model, messages)
    failures, lock, sent = [], threading.Lock(), [0]
    u = urllib.parse.urlparse(target.base)
    def worker(i):
        conn = None if new_connection_each else http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        try:
            while True:
                with lock:
                    if sent[0] >= messages:
                        return
                    n = sent[0]
                    sent[0] += 1
                conv = conversations[n % len(conversations)]
                status, _ = request(target.base, "POST", f"/api/conversations/{conv}/messages", {"content": "benchmark words here"},
                                    {**auth, "accept": "text/event-stream" if stream else "application/json"}, conn=conn)
                if status >= 300:
                    failures.append(status)
        finally:
            if conn is not None:
                conn.close()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return failures


def answer_at_once(target, conversations, contents, timeout=600):
    """One JSON chat message to each conversation (`contents` in the same order), all sent at once, a thread each;
    their statuses (bench/redis_memory.py, bench/finished_memory.py)."""
    auth = {"authorization": f"Bearer {target.token}", "accept": "application/json"}
    statuses = []
    threads = [threading.Thread(target=lambda c=c, text=text: statuses.append(request(
        target.base, "POST", f"/api/conversations/{c}/messages", {"content": text}, auth, timeout=timeout)[0]))
        for c, text in zip(conversations, contents)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


def pg_counters(target):
    """Transactions and rows written in the benchmark's database (PostgreSQL's statistics, flushed first),
    and the bytes of WAL the whole server wrote (the WAL position: exact, where pg_stat_wal lags by up to
    10 s, as other backends flush their statistics)."""
    sql = ("SELECT pg_stat_force_next_flush(); SELECT xact_commit, tup_inserted, tup_updated, tup_deleted, "
           "pg_current_wal_lsn() - '0/0'::pg_lsn FROM pg_stat_database WHERE datname = 'postgres'")
    # A busy backend reports its statistics at most once a second, an idle one within 10 s.
    time.sleep(11 if SETTLE_STATS else 0)
    out = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(target.pg_port), "-U", "postgres", "-At", "-c", sql],
                         capture_output=True, text=True).stdout.strip().splitlines()[-1].split("|")
    return dict(zip(["transactions", "rows_inserted", "rows_updated", "rows_deleted", "wal_bytes"], (int(float(x)) for x in out)))


def redis_commands(target):
    out = subprocess.run(["redis-cli", "-p", str(target.redis_port), "INFO", "stats"], capture_output=True, text=True).stdout
    return int(next(l.split(":")[1] for l in out.splitlines() if l.startswith("total_commands_processed:")))


# ---- report ---------------------------------------------------------------------------------------

def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="a few seconds per target: proves the benchmark works")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--streams", type=int, default=1000, help="open streams for the memory figure (from a tenth of it)")
    ap.add_argument("--out", default=HERE)
    ap.add_argument("--capacity", type=int, metavar="N",
                    help="only the capacity model's local check: Jackcwf alone holding 1,000, then N idle /v1 streams (one chunk a second each)")
    ap.add_argument("--replicas", action="store_true",
                    help=f"only the coordination figure: one Jackcwf replica against {REPLICAS} sharing PostgreSQL and Redis, non-streamed, interleaved")
    a = ap.parse_args()
    if a.capacity:
        return capacity(a)
    if a.quick:
        a.rounds, a.seconds, a.streams = 1, 2, 40
        global SETTLE_STATS
        SETTLE_STATS = False
    if a.replicas:
        return replicas(a)
    ttft_samples = 10 if a.quick else 300  # per target, for a p99 that is not the one slowest sample
    chat_messages = 40 if a.quick else 800  # a round, per model
    # The JIT tiers the chat path up over thousands of messages (bench/README.md, "Where a chat message's service
    # CPU goes"): after 1,500 the first model measured (the demo model) still cost 1.7 times the second's service CPU.
    chat_warmup = 5 if a.quick else 6000
    work = tempfile.mkdtemp(prefix="jackcwf-bench-")
    results = run_header(a)
    try:
        log(f"work folder {work}; load average {os.getloadavg()[0]:.2f}")
        upstream = start_upstream(work)
        log(f"fake upstream at {upstream.base}")
        pg_port, pg_pid = start_postgres(work)
        redis_port, redis_pid = start_redis(work)
        log(f"PostgreSQL on {pg_port} (pid {pg_pid}), Redis on {redis_port} (pid {redis_pid})")
        targets = [start_yarp(work, upstream), start_portkey(work, upstream), start_jackcwf(work, upstream, pg_port, pg_pid, redis_port, redis_pid)]
        time.sleep(2)
        for t in targets:
            t.rest_rss_kib = rss_kib(t.pid)
            log(f"{t.name}: ready in {t.ready_s:.2f} s, {t.rest_rss_kib / 1024:.0f} MiB at rest")
        results["start"] = {t.name: {"ready_s": t.ready_s, "rss_at_rest_mib": t.rest_rss_kib / 1024,
                                     **{k: getattr(t, k) for k in ("ready_cpu_s", "first_ready_s", "first_ready_cpu_s") if hasattr(t, k)}} for t in targets}
        jack = targets[-1]
        log(f"{jack.name}: ready in {jack.ready_s:.2f} s ({jack.ready_cpu_s:.2f} s of CPU) on a restart; the first start, "
            f"creating the schema, took {jack.first_ready_s:.2f} s ({jack.first_ready_cpu_s:.2f} s of CPU)")

        group = start_replicas(work, jack, REPLICAS - 1)
        log(f"{group.name}: {', '.join(group.bases)} (the extra ones paused between their runs)")
        hops = start_hop_replicas(work, upstream, targets[0], REPLICAS - 1)
        log(f"{hops.name}: {', '.join(hops.bases)} (the control: nothing shared between them)")
        results["replica_group"], results["hop_group"] = group.name, hops.name
        if not a.quick:
            warm_up(group)
            warm_up(hops)
        scenarios = [("nonstream16", FAST, False, 16), ("nonstream64", FAST, False, 64), ("stream16", FAST, True, 16),
                     ("latency16_20ms", DELAYED, False, 16), ("latency256_20ms", DELAYED, False, 256)]
        third = one_replica_a_third(jack)
        runs = run_rounds([upstream] + targets + [group, third, hops], scenarios, a.rounds, a.seconds, a.quick, upstream)
        results["runs"] = runs
        if not a.quick:
            results["idle"] = idle_cpu(group, 10)

        # Sequential streamed requests in blocks of a tenth of the samples, the targets taking turns block by block, so
        # a pause of the machine falls on any of them rather than on one target's slowest figure. Within a block the
        # requests follow each other, as in runs before 2026-12-06 23:45 UTC (one block of 60 per target): taken one
        # request per target in turn, each request found its process idle since its previous one (Portkey's 30 ms
        # between them) and every target's p50 rose by 0.3-1.5 ms (bench/README.md, the table's first-token row).
        everyone = [upstream] + targets
        samples = {t.name: [] for t in everyone}
        for t in everyone:
            first_token_ms(t, FAST)
        block = max(1, ttft_samples // 10)
        for _ in range(0, ttft_samples, block):
            for t in everyone:
                samples[t.name] += [first_token_ms(t, FAST) for _ in range(block)]
        ttft = {}
        for t in everyone:
            ok = sorted(x for x in samples[t.name] if x is not None)
            ttft[t.name] = {"p50_ms": med(ok), "p99_ms": ok[min(len(ok) - 1, int(0.99 * len(ok)))] if ok else None,
                            "max_ms": ok[-1] if ok else None, "answered": len(ok), "samples": len(samples[t.name]), "block": block}
            log(f"first token {t.name:<15} p50 {ttft[t.name]['p50_ms'] or 0:.2f} ms, p99 {ttft[t.name]['p99_ms'] or 0:.2f} ms, "
                f"slowest {ttft[t.name]['max_ms'] or 0:.2f} ms of {len(ok)}")
        results["first_token"] = ttft

        # Before the streams: a chat stream's generation outlives its closed connection (up to 50 s of the slow model).
        jack = targets[-1]
        # Both models warmed up first, then rounds alternating between them, medians: one block per model made the
        # first one measured pay for the JIT's tier-up of the path they share, and one run's spread went unseen.
        models = (("demo model", "demo/echo"), ("OpenAI upstream", "openai/" + FAST))
        for label, model in models:
            log(f"chat warm-up ({label}): {chat_warmup:,} messages")
            send_chat_messages(jack, model, chat_warmup, 8)
        chat_rounds = {label: [] for label, _ in models}
        for r in range(a.rounds):
            for label, model in models:
                c = chat_cpu_per_message(jack, model, chat_messages)
                chat_rounds[label].append(c)
                log(f"chat message ({label}, round {r + 1} of {a.rounds}): " + " + ".join(f"{k} {v:,.0f}" for k, v in c["cpu_us"].items() if v is not None)
                    + f" µs; failures {c['failures']}; per message: PostgreSQL {c['pg_per_message']}, Redis commands {c['redis_commands_per_message']}")
        chat = {label: median_of_rounds(rs) for label, rs in chat_rounds.items()}
        results["chat"], results["chat_warmup"], results["chat_rounds"], results["chat_round_messages"] = chat, chat_warmup, chat_rounds, chat_messages
        memory = {}
        for t in targets:
            if t is jack:
                # On a fresh process: the one measured so far carries the GC heap its load grew, and gives it back
                # while the streams open (900 streams grew its RSS by -24 KiB a stream in the run of 2026-12-06
                # 19:38, by 2.97 KiB for the chat streams in the run of 16:38). The hop's and Portkey's figures,
                # measured after the same load, moved by 2 KiB between those runs.
                log(f"{t.name}: restarted for the memory figures, {t.restart() / 1024:.0f} MiB at rest")
            # A restarted process runs its streams' code JIT-compiled at the first tier for some seconds (the CPU holding
            # 1,000 /v1 streams was 53 % of a core 2-7 s after they opened, 7-13 % on the process that had carried the
            # load): its CPU is read from 12 s after the streams opened. Its RSS is read 2 s after, as the others': at 12 s
            # it held 73 KiB a stream against 49 at 2 s, the GC's young generation grown by the streams' chunks.
            memory[t.name] = memory_per_stream(t, a.streams // 10, a.streams, settle_seconds=12 if t is jack else 2)
            m = memory[t.name]
            log(f"memory {t.name:<15} {m['kib_per_stream'] or 0:.1f} KiB per open stream ({m['streams']}), {m['rss_kib'][1] / 1024:.0f} MiB with {m['streams'][1]} open "
                f"(opened in {m['open_s']:.1f} s); CPU holding them: " + " + ".join(f"{k} {v:.1f} %" for k, v in m["held_cpu_percent"].items()))
        # Each chat stream in its own conversation, as users hold them: in one shared conversation every new
        # stream would also carry all the earlier ones' messages as its context.
        conversations = []
        for _ in range(a.streams):
            conv_status, conv = request(jack.base, "POST", "/api/conversations", {"model": "openai/" + SLOW}, {"authorization": f"Bearer {jack.token}"})
            if conv_status >= 300:
                break
            conversations.append(conv["id"])
        if len(conversations) == a.streams:
            log(f"{jack.name}: restarted for the chat streams, {jack.restart() / 1024:.0f} MiB at rest")
            paths = iter(conversations)
            memory["Jackcwf chat stream"] = memory_per_stream(
                jack, a.streams // 10, a.streams, settle_seconds=12, path=lambda: f"/api/conversations/{next(paths)}/messages",
                body=json.dumps({"content": "hold this stream open"}), headers={"Authorization": f"Bearer {jack.token}"})
            m = memory["Jackcwf chat stream"]
            log(f"memory Jackcwf chat stream {m['kib_per_stream'] or 0:.1f} KiB per open stream ({m['streams']}), {m['rss_kib'][1] / 1024:.0f} MiB; "
                "CPU holding them: " + " + ".join(f"{k} {v:.1f} %" for k, v in m["held_cpu_percent"].items()))
        results["memory"] = memory

        results["loadavg_end"] = os.getloadavg()
    finally:
        stop_all()
        shutil.rmtree(work, ignore_errors=True)

    problems = check_answered(results)
    write_report(results, a.out, a.quick)
    if problems:
        for p in problems:
            print(f"FAILED: {p}", file=sys.stderr)
        sys.exit(1)
    log("every target answered")


def one_replica_a_third(jack):
    """The first replica alone with a third of the clients: the load each replica of the group carries."""
    third = Target(THIRD, jack.base, jack.path, jack.headers, jack.model_prefix, jack.pid, jack.extra_pids)
    third.pg_port, third.redis_port, third.client_fraction = jack.pg_port, jack.redis_port, 1 / REPLICAS
    third.nonstream_only = True
    return third


def run_rounds(everyone, scenarios, rounds, seconds, quick, upstream=None):
    """Every scenario for every target, interleaved: within a round each scenario runs on every target in
    turn, and the order rotates between rounds, so a noisy moment does not land on one target. The
    upstream alone runs only the latency scenarios (the baseline of "added"), the targets marked
    `nonstream_only` (the replica groups and the single replica at a third of the clients) only the
    non-streamed ones: the coordination figure and its controls."""
    runs = {}
    for r in range(rounds):
        order = everyone[r % len(everyone):] + everyone[: r % len(everyone)]
        for name, model, stream, clients in scenarios:
            for t in order:
                if t is upstream and not name.startswith("latency") or getattr(t, "nonstream_only", False) and name not in REPLICA_SCENARIOS:
                    continue
                c = max(1, round(clients * getattr(t, "client_fraction", 1)))
                with t if isinstance(t, ReplicaGroup) else contextlib.nullcontext():
                    if not quick:
                        wrk(t, model, stream, c, 1)  # warm-up
                    res = wrk(t, model, stream, c, seconds)
                runs.setdefault(t.name, {}).setdefault(name, []).append(res)
                cpu = " + ".join(f"{k} {v:,.0f}" for k, v in res["cpu_us"].items() if v is not None)
                extra = f"  Redis commands/req {res['redis_commands_per_request']:.1f}" if res.get("redis_commands_per_request") is not None else ""
                if "replica_requests" in res:
                    extra += f"  requests per replica {res['replica_requests']}"
                log(f"round {r + 1} {name:<16} {t.name:<15} {res['rps']:>8,.0f} req/s  p50 {res['p50_ms']} ms  p99 {res['p99_ms']} ms  errors {res['errors']}  CPU µs/req: {cpu}{extra}")
    return runs


def check_answered(results, nonstream_only=False):
    """The quick run's assertion: every target served non-streamed and streamed requests, streamed a
    token and (Jackcwf) stored chat messages; each of the replicas served non-streamed requests.
    Figures are not judged: they belong to the report."""
    problems = []
    groups = (results.get("replica_group"), results.get("hop_group"))
    for target, scenarios in results["runs"].items():
        group = target if target in groups else None
        kinds = ["latency"] if target == "direct" else ["nonstream"] if group or nonstream_only or target == THIRD else ["nonstream", "stream16", "latency"]
        for kind in kinds:
            answered = sum(r["requests"] - min(r["errors"], r["requests"]) for n, runs in scenarios.items() if n.startswith(kind) for r in runs)
            if answered == 0:
                problems.append(f"{target} answered no request in the {kind} scenarios")
        if target == group:
            for i, served in enumerate(zip(*(r["replica_requests"] for runs in scenarios.values() for r in runs))):
                if sum(served) == 0:
                    problems.append(f"{target}: replica {i + 1} answered no request")
    for target, t in results.get("first_token", {}).items():
        if t["answered"] == 0:
            problems.append(f"{target} streamed no token")
    for name, c in results.get("chat", {}).items():
        if c["messages"] == 0:
            problems.append(f"Jackcwf chat ({name}) stored no message")
    return problems


def replica_report(results):
    """The coordination figure's table: one replica against the group, from the same interleaved rounds."""
    runs, one, group = results["runs"], "Jackcwf /v1", results.get("replica_group")
    if not group or group not in runs:
        return []
    n = len(runs[group]["nonstream16"][0].get("replica_requests", [])) or REPLICAS
    def total(r):
        return sum(v for v in r["cpu_us"].values() if v is not None)
    def f(v, digits=0):
        return "—" if v is None else f"{v:,.{digits}f}"
    has_third = THIRD in runs
    lines = [f"## {n} replicas sharing PostgreSQL and Redis (coordination cost; target: ≤ 1.1× one replica's total)", "",
             f"Non-streamed `/v1` (upstream answering at once), the same total clients split across the {n} replicas (one wrk "
             "process each); total CPU per request = the replicas + PostgreSQL + Redis, medians over rounds. Measured in the same "
             "rounds as the single replica, interleaved with it; the extra replicas are stopped (SIGSTOP) outside their own runs"
             + (f"; \"a third of the clients\" is the single replica carrying one group member's load (16 → 5, 64 → 21 clients)" if has_third else "")
             + ".", "",
             f"| clients | 1 replica: total µs (service + PostgreSQL + Redis) | {n} replicas: total µs (services + PostgreSQL + Redis) "
             f"| {n} ÷ 1 | {n} ÷ 1 per round |" + (f" 1 replica, a third of the clients: total µs | {n} ÷ that |" if has_third else "")
             + f" Redis commands per request, 1 / {n} | requests/s, 1 / {n} |",
             "| ---: | ---: | ---: | ---: | --- |" + (" ---: | ---: |" if has_third else "") + " ---: | ---: |"]
    ratios = {}  # Jackcwf's group ÷ one replica per scenario, for the hops' table
    for scenario in REPLICA_SCENARIOS:
        a_, b, c = runs.get(one, {}).get(scenario, []), runs.get(group, {}).get(scenario, []), runs.get(THIRD, {}).get(scenario, [])
        if not a_ or not b:
            continue
        def parts(rows):
            return " + ".join(f(med([r["cpu_us"].get(k) for r in rows])) for k in ("service", "postgresql", "redis"))
        ta, tb, tc = med([total(r) for r in a_]), med([total(r) for r in b]), med([total(r) for r in c])
        ratios[scenario] = tb / ta if ta else None
        per_round = ", ".join(f"{total(y) / total(x):.2f}" for x, y in zip(a_, b) if total(x))
        lines.append(f"| {scenario[len('nonstream'):]} | {f(ta)} ({parts(a_)}) | {f(tb)} ({parts(b)}) | "
                     f"{'—' if not ta else f'{tb / ta:.2f}×'} | {per_round} |"
                     + (f" {f(tc)} ({parts(c)}) | {'—' if not tc else f'{tb / tc:.2f}×'} |" if has_third else "")
                     + f" {f(med([r.get('redis_commands_per_request') for r in a_]), 1)} / {f(med([r.get('redis_commands_per_request') for r in b]), 1)} | "
                     f"{f(med([r['rps'] for r in a_]))} / {f(med([r['rps'] for r in b]))} |")
    hop_group, hop = results.get("hop_group"), "bare YARP hop"
    if hop_group in runs and hop in runs:
        lines += ["", f"The control: {n} bare YARP hops against one, measured the same way in the same rounds. The hops share nothing, "
                  f"so their {n} ÷ 1 is what {n} processes cost on these cores by themselves (time-sharing, each carrying a 1/{n} of "
                  f"the load); Jackcwf's {n} ÷ 1 over the hops' is what its replicas add to that, coordination included.", "",
                  f"| clients | 1 hop: µs | {n} hops: µs | hops' {n} ÷ 1 | per round | Jackcwf's {n} ÷ 1 over the hops' |",
                  "| ---: | ---: | ---: | ---: | --- | ---: |"]
        for scenario in REPLICA_SCENARIOS:
            h1, h3 = runs[hop].get(scenario, []), runs[hop_group].get(scenario, [])
            if not h1 or not h3:
                continue
            t1, t3 = med([total(r) for r in h1]), med([total(r) for r in h3])
            per_round = ", ".join(f"{total(y) / total(x):.2f}" for x, y in zip(h1, h3) if total(x))
            hop_ratio = t3 / t1 if t1 else None
            jack_ratio = ratios.get(scenario)
            lines.append(f"| {scenario[len('nonstream'):]} | {f(t1)} | {f(t3)} | {'—' if hop_ratio is None else f'{hop_ratio:.2f}×'} | {per_round} | "
                         f"{'—' if not hop_ratio or jack_ratio is None else f'{jack_ratio / hop_ratio:.2f}×'} |")
    idle = results.get("idle")
    if idle:
        lines += ["", f"With no request at all the {n} replicas together spend " + ", ".join(f"{k} {v:.2f} %" for k, v in idle.items())
                  + " of one core (timers, sweeps, flushes)."]
    return lines + [""]


def idle_cpu(group, seconds):
    """What the replicas, PostgreSQL and Redis spend with no request at all (timers, sweeps, flushes),
    % of one core: the background work that three replicas do three times."""
    with group:
        time.sleep(2)
        before = group.cpu()
        time.sleep(seconds)
        after = group.cpu()
    idle = {k: (after[k] - before[k]) / seconds * 100 for k in before}
    log("idle, the replicas together: " + ", ".join(f"{k} {v:.2f} %" for k, v in idle.items()) + " of one core")
    return idle


def warm_up(group, requests=20000, limit_s=90):
    """Each replica alone (the others paused) serves `requests` non-streamed requests before the measured
    rounds: on this machine a replica's CPU per request keeps falling until it has served about 20,000
    (the JIT tiering its hot path up; 3,000 µs after 1,000, 1,000 after 15,000, 500-600 after 20,000), and
    a replica that gets a third of the load would otherwise be measured three times further from its
    steady state than the single one."""
    for i, (pid, base) in enumerate(zip(group.pids, group.bases)):
        alone = Target(f"replica {i + 1}", base, group.path, group.headers, group.model_prefix, pid)
        if i:
            resume(pid)
        served, began = 0, time.perf_counter()
        while served < requests and time.perf_counter() - began < limit_s:
            served += wrk(alone, FAST, False, 16, 5)["requests"]
        if i:
            pause(pid)
        log(f"warm-up: replica {i + 1} served {served:,} requests in {time.perf_counter() - began:.0f} s")


def run_header(a):
    """What every results file starts with: when, how long, on how many cores, at which load."""
    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "quick": a.quick,
            "rounds": a.rounds, "seconds": a.seconds, "cpus": os.cpu_count(), "loadavg_start": os.getloadavg()}


def replicas(a):
    """Only the coordination figure: one replica against the group, non-streamed at 16 and 64 clients,
    interleaved in `a.rounds` rounds; writes replicas.json to `a.out` and prints the table."""
    work = tempfile.mkdtemp(prefix="jackcwf-replicas-")
    results = run_header(a)
    try:
        log(f"work folder {work}; load average {os.getloadavg()[0]:.2f}")
        upstream = start_upstream(work)
        pg_port, pg_pid = start_postgres(work)
        redis_port, redis_pid = start_redis(work)
        jack = start_jackcwf(work, upstream, pg_port, pg_pid, redis_port, redis_pid)
        group = start_replicas(work, jack, REPLICAS - 1)
        hop = start_yarp(work, upstream)
        hops = start_hop_replicas(work, upstream, hop, REPLICAS - 1)
        results["replica_group"], results["hop_group"] = group.name, hops.name
        log(f"{group.name}: {', '.join(group.bases)}; {hops.name}: {', '.join(hops.bases)}")
        if not a.quick:
            warm_up(group)
            warm_up(hops)
        third = one_replica_a_third(jack)
        scenarios = [("nonstream16", FAST, False, 16), ("nonstream64", FAST, False, 64)]
        results["runs"] = run_rounds([jack, group, third, hop, hops], scenarios, a.rounds, a.seconds, a.quick)
        results["idle"] = idle_cpu(group, 2 if a.quick else 10)
        results["loadavg_end"] = os.getloadavg()
    finally:
        stop_all()
        shutil.rmtree(work, ignore_errors=True)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "replicas.json"), "w") as f:
        json.dump(results, f, indent=1)
    print("\n".join([f"Load average {results['loadavg_start'][0]:.2f} at start, {results['loadavg_end'][0]:.2f} at end; "
                      f"{a.rounds} round(s) of {a.seconds} s per wrk run.", ""] + replica_report(results)))
    problems = check_answered(results, nonstream_only=True)
    if problems:
        for p in problems:
            print(f"FAILED: {p}", file=sys.stderr)
        sys.exit(1)
    log("every replica answered")


def write_report(results, out, quick):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    runs, jack, hop, pk = results["runs"], "Jackcwf /v1", "bare YARP hop", "Portkey 1.15.2"

    def cpu(target, scenario, part=None):
        rows = runs.get(target, {}).get(scenario, [])
        if part:
            return med([r["cpu_us"].get(part) for r in rows])
        return med([sum(v for v in r["cpu_us"].values() if v is not None) for r in rows])

    def added(target, scenario, key):
        rows, direct = runs.get(target, {}).get(scenario, []), runs.get("direct", {}).get(scenario, [])
        return med([r[key] - d[key] for r, d in zip(rows, direct) if r[key] is not None and d[key] is not None])

    def f(v, unit=""):
        return "—" if v is None else f"{v:,.0f}{unit}" if abs(v) >= 10 else f"{v:,.2f}{unit}"

    def ratio(a_, b):
        return "—" if a_ is None or not b else f"{a_ / b:.1f}×"

    lines = [f"# Benchmark results{' (quick run: proves the benchmark works, figures are not meaningful)' if quick else ''}", "",
             f"`bench/run.sh` on {results['date']}, {results['cpus']} cores, {results['rounds']} interleaved round(s) of "
             f"{results['seconds']} s per wrk run, medians over rounds. Load average at start "
             f"{results['loadavg_start'][0]:.2f}, at end {results.get('loadavg_end', [0])[0]:.2f} "
             "(figures are only comparable within one run).", "",
             "## CPU per request (µs, the target's own; Jackcwf includes its PostgreSQL and Redis)", "",
             f"| scenario | {jack} | of which PostgreSQL | of which Redis | {hop} | {pk} | Jackcwf ÷ hop | Jackcwf ÷ Portkey |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for scenario, label in (("nonstream16", "non-streamed, 16 clients"), ("nonstream64", "non-streamed, 64 clients"), ("stream16", "streamed (50 chunks), 16 clients")):
        j = cpu(jack, scenario)
        lines.append(f"| {label} | {f(j)} | {f(cpu(jack, scenario, 'postgresql'))} | {f(cpu(jack, scenario, 'redis'))} | {f(cpu(hop, scenario))} | {f(cpu(pk, scenario))} | {ratio(j, cpu(hop, scenario))} | {ratio(j, cpu(pk, scenario))} |")
    redis_per_request = med([r.get("redis_commands_per_request") for r in runs.get(jack, {}).get("nonstream16", [])])
    lines += ["", f"Redis commands per non-streamed `/v1` request (rate limits, budget reservation and settlement): {f(redis_per_request)}."]
    lines += ["", "## Added latency (ms above the upstream alone, 20 ms upstream)", "",
              f"| figure | {jack} | {hop} | {pk} |", "| --- | ---: | ---: | ---: |"]
    for scenario, key, label in (("latency16_20ms", "p50_ms", "16 clients, p50"), ("latency16_20ms", "p99_ms", "16 clients, p99"), ("latency256_20ms", "p99_ms", "256 clients, p99")):
        lines.append(f"| {label} | {f(added(jack, scenario, key))} | {f(added(hop, scenario, key))} | {f(added(pk, scenario, key))} |")
    errors = {t: sum(r["errors"] for r in runs.get(t, {}).get("latency256_20ms", [])) for t in (jack, hop, pk)}
    lines.append(f"| errors at 256 clients | {errors[jack]} | {errors[hop]} | {errors[pk]} |")
    ft, direct = results["first_token"], results["first_token"].get("direct", {})
    def ft_added(t, key):
        return None if ft.get(t, {}).get(key) is None or direct.get(key) is None else ft[t][key] - direct[key]
    lines += ["", "## Time to first token (ms added to the upstream alone)", "", f"| figure | {jack} | {hop} | {pk} |", "| --- | ---: | ---: | ---: |",
              f"| p50 | {f(ft_added(jack, 'p50_ms'))} | {f(ft_added(hop, 'p50_ms'))} | {f(ft_added(pk, 'p50_ms'))} |",
              f"| p99 | {f(ft_added(jack, 'p99_ms'))} | {f(ft_added(hop, 'p99_ms'))} | {f(ft_added(pk, 'p99_ms'))} |",
              f"| slowest | {f(ft_added(jack, 'max_ms'))} | {f(ft_added(hop, 'max_ms'))} | {f(ft_added(pk, 'max_ms'))} |"]
    n_ft, block = ft.get(jack, {}).get("samples"), ft.get(jack, {}).get("block")
    if n_ft:
        lines += ["", f"{n_ft} sequential streamed requests per target, in blocks of {block}, the targets taking turns "
                      "block by block; each figure is the target's percentile minus the upstream's own (runs before 2026-12-06 23:45 UTC "
                      "took one block of 60 per target and reported no p99)."]
    mem, start = results["memory"], results["start"]
    lines += ["", "## Memory and start-up", "", f"| figure | {jack} | {hop} | {pk} |", "| --- | ---: | ---: | ---: |"]
    streams = next(iter(mem.values()))["streams"] if mem else ["?", "?"]
    lines.append(f"| KiB per open stream ({streams[0]} → {streams[1]} streams) | {f(mem.get(jack, {}).get('kib_per_stream'))} (chat stream {f(mem.get('Jackcwf chat stream', {}).get('kib_per_stream'))}) | {f(mem.get(hop, {}).get('kib_per_stream'))} | {f(mem.get(pk, {}).get('kib_per_stream'))} |")
    def held(t):
        m = mem.get(t)
        return "—" if not m else (f"{m['streams'][1]:,} held: " if m.get("failed") else "") + f"{m['rss_kib'][1] / 1024:,.0f} MiB, " + \
            " + ".join(f"{k} {v:.0f} %" for k, v in m["held_cpu_percent"].items())
    lines.append(f"| with {streams[1]} streams open: RSS, CPU (% of one core) | {held(jack)} (chat streams: {held('Jackcwf chat stream')}) | {held(hop)} | {held(pk)} |")
    lines.append(f"| RSS at rest (MiB) | {f(start[jack]['rss_at_rest_mib'])} | {f(start[hop]['rss_at_rest_mib'])} | {f(start[pk]['rss_at_rest_mib'])} |")
    lines.append(f"| start to ready (s; Jackcwf: a restart, schema current) | {f(start[jack]['ready_s'])} | {f(start[hop]['ready_s'])} | {f(start[pk]['ready_s'])} |")
    if start[jack].get("ready_cpu_s") is not None:
        lines.append(f"| CPU to ready (s); first start on an empty database (s, CPU s) | {f(start[jack]['ready_cpu_s'])}; {f(start[jack]['first_ready_s'])}, {f(start[jack]['first_ready_cpu_s'])} | — | — |")
    if mem:
        lines += ["", "The streams' figures are measured last. Jackcwf's, the `/v1` streams' and then the chat streams', each on a process "
                  "restarted for them, the CPU holding them read from 12 s after they opened, once the JIT has compiled their "
                  "code at its second tier: the process that carried the load before holds a GC heap it gives back while streams open "
                  "(runs before 2026-12-06 20:00 measured on it, from -24 to 52 KiB a stream)."]
    chat_rounds = next(iter(results["chat"].values()))["rounds"]
    lines += ["", "## Chat message (`POST /api/conversations/{id}/messages`, JSON), per message", "",
              f"8 clients, 25 messages a conversation, after {results.get('chat_warmup', 1500):,} unmeasured warm-up messages of each model, then "
              f"{chat_rounds} round(s) of {results['chat_round_messages']:,} messages, the two models alternated, medians; each client "
              "keeps one HTTP/1.1 connection for all its messages, as the web app and the SDKs do (runs before 2026-12-06 opened one "
              "per message: about 60-170 µs more of service CPU a message, bench/README.md).", "",
              "| model | CPU µs: service | PostgreSQL | Redis | total | PostgreSQL transactions | rows inserted / updated | Redis commands |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for label, c in results["chat"].items():
        u, pg = c["cpu_us"], c.get("pg_per_message") or {}
        total = sum(v for v in u.values() if v is not None) if c["messages"] else None
        lines.append(f"| {label} | {f(u.get('service'))} | {f(u.get('postgresql'))} | {f(u.get('redis'))} | {f(total)} | {f(pg.get('transactions'))} | "
                     f"{f(pg.get('rows_inserted'))} / {f(pg.get('rows_updated'))} | {f(c.get('redis_commands_per_message'))} |")
    lines += [""] + replica_report(results)
    lines += ["Raw figures of every run: `results.json` beside this file.", ""]
    with open(os.path.join(out, "results.md"), "w") as fh:
        fh.write("\n".join(lines))
    print("\n".join(lines))


def capacity(a):
    """Jackcwf alone (no other target beside it) holding a tenth of N, then N idle /v1 streams; RSS, KiB
    per stream and the CPU of the service, PostgreSQL and Redis while holding them. A proxy holds two
    files per stream (client and upstream connections): where the open-file limit cannot hold 2 N, the
    N streams come from the in-process demo model (one chunk a second, no upstream connection), and a
    second run holds as many streams through the upstream as the limit allows (a multiple of 500), so
    the figure of a real /v1 stream is measured too. The report says which is which."""
    import resource
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    fits = lambda n: 2 * n + 1000 <= limit
    runs = [(a.capacity, True)]
    if not fits(a.capacity):
        runs = [(a.capacity, False)]
        most = (limit - 1000) // 2 // 500 * 500
        if most >= 1000:
            runs.append((most, True))
    result = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "streams": a.capacity,
              "open_files_limit": limit, "cpus": os.cpu_count(), "loadavg_start": os.getloadavg(), "runs": []}
    for streams, through_upstream in runs:
        run = capacity_run(streams, through_upstream, limit)
        result["runs"].append(run)
        if len(result["runs"]) == 1:  # the figures for N, where earlier reports had them
            result["model"], result["rss_at_rest_mib"], result["memory"] = run["model"], run["rss_at_rest_mib"], run["memory"]
    result["loadavg_end"] = os.getloadavg()
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, f"capacity-{a.capacity}.json"), "w") as f:
        json.dump(result, f, indent=1)


def capacity_run(streams, through_upstream, limit):
    """One replica, its own PostgreSQL, Redis and upstream, holding a tenth of `streams`, then all."""
    work = tempfile.mkdtemp(prefix="jackcwf-capacity-")
    run = {"streams": streams, "model": "upstream slow-stream" if through_upstream else "demo/echo, 1 chunk/s (open-file limit)"}
    try:
        log(f"work folder {work}; load average {os.getloadavg()[0]:.2f}; open files {limit}: {streams:,} streams from "
            + ("the upstream" if through_upstream else f"the demo model (2 × {streams:,} connections do not fit in {limit:,} files)"))
        upstream = start_upstream(work)
        pg_port, pg_pid = start_postgres(work)
        redis_port, redis_pid = start_redis(work)
        cap = str(max(10000, streams))
        jack = start_jackcwf(work, upstream, pg_port, pg_pid, redis_port, redis_pid, {
            "MAX_CONCURRENT_STREAMS": cap, "MAX_CONCURRENT_GENERATIONS": cap, "DEMO_CHUNK_DELAY_MS": "1000"})
        time.sleep(2)
        run["rss_at_rest_mib"] = rss_kib(jack.pid) / 1024
        body = None if through_upstream else json.dumps({"model": "demo/echo", "stream": True, "messages": [{"role": "user", "content": " ".join(["word"] * 900)}]})
        m = memory_per_stream(jack, min(1000, streams // 10), streams, body=body)
        run["memory"] = m
        log(f"capacity ({'upstream' if through_upstream else 'demo model'}): {m['streams'][1]:,} of {streams:,} streams held ({m['failed']} failed), "
            f"{m['rss_kib'][1] / 1024:,.0f} MiB (at rest {run['rss_at_rest_mib']:.0f}), {m['kib_per_stream'] or 0:.1f} KiB per stream from "
            f"{m['streams'][0]:,} to {m['streams'][1]:,}, opened in {m['open_s']:.1f} s; CPU holding them (% of one core): "
            + ", ".join(f"{k} {v:.1f}" for k, v in m["held_cpu_percent"].items()) + f"; load average {os.getloadavg()[0]:.1f}")
    finally:
        stop_all()
        shutil.rmtree(work, ignore_errors=True)
    return run


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        stop_all()
        sys.exit(130)
