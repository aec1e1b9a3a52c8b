"""Measures the service's per-request CPU, time to first token and memory per open stream."""
import argparse, http.client, json, os, statistics, subprocess, threading, time, urllib.parse, uuid

def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

def request(base, method, path, body=None, headers=None):
    u = urllib.parse.urlparse(base)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    h = {"content-type": "application/json", **(headers or {})}
    c.request(method, path, json.dumps(body) if body is not None else None, h)
    r = c.getresponse()
    data = r.read()
    c.close()
    try:
        return r.status, (json.loads(data) if data else None)
    except ValueError:
        return r.status, data

def wrk(url, seconds, headers):
    args = ["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency"]
    for k, v in headers.items():
        args += ["-H", f"{k}: {v}"]
    out = subprocess.run(args + [url], capture_output=True, text=True, check=True).stdout
    total = int([l for l in out.splitlines() if "requests in" in l][0].split()[0])
    p99 = [l for l in out.splitlines() if l.strip().startswith("99%")][0].split()[1]
    return total, p99

def first_delta_ms(base, token, conversation):
    u = urllib.parse.urlparse(base)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    start = time.perf_counter()
    c.request("POST", f"/api/conversations/{conversation}/messages", json.dumps({"content": "benchmark words here"}),
              {"content-type": "application/json", "accept": "text/event-stream", "authorization": f"Bearer {token}"})
    r = c.getresponse()
    first = None
    while True:
        line = r.fp.readline()
        if not line:
            break
        if first is None and line.startswith(b"event: delta"):
            first = (time.perf_counter() - start) * 1000
        if line.startswith(b"event: done") or line.startswith(b"event: error"):
            r.fp.readline()
            break
    c.close()
    return first

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--phase", choices=["speed", "memory"], required=True)
    a = ap.parse_args()
    email, password = f"bench-{uuid.uuid4().hex[:8]}@example.com", "Bench-Passw0rd"
    request(a.base, "POST", "/api/auth/register", {"email": email, "password": password})
    _, tokens = request(a.base, "POST", "/api/auth/login", {"email": email, "password": password})
    token = tokens["accessToken"]
    _, key = request(a.base, "POST", "/api/keys", {"name": "bench"}, {"authorization": f"Bearer {token}"})
    _, conv = request(a.base, "POST", "/api/conversations", {}, {"authorization": f"Bearer {token}"})

    if a.phase == "memory":
        return memory(a, token, conv)
    rows = []
    for name, path, headers in [("GET /health/live (floor: routing + metrics)", "/health/live", {}),
                                ("GET /v1/models (API key auth, access cache, limits, metrics, log)", "/v1/models", {"Authorization": f"Bearer {key['key']}"})]:
        wrk(a.base + path, 2, headers)  # warm-up
        c0 = cpu_seconds(a.pid)
        n, p99 = wrk(a.base + path, a.duration, headers)
        c1 = cpu_seconds(a.pid)
        rows.append((name, n / a.duration, (c1 - c0) / n * 1e6, p99))
    print("\nCPU per request (wrk -t2 -c16, %ds)" % a.duration)
    print("| route | requests/s | service CPU µs/request | p99 latency |\n| --- | ---: | ---: | ---: |")
    for name, rps, us, p99 in rows:
        print(f"| {name} | {rps:,.0f} | {us:,.0f} | {p99} |")

    for _ in range(20):
        first_delta_ms(a.base, token, conv["id"])
    samples = [first_delta_ms(a.base, token, conv["id"]) for _ in range(200)]
    samples.sort()
    print("\nTime to first streamed token, demo model without delay (200 sequential chats; includes storing both messages)")
    print(f"p50 {statistics.median(samples):.2f} ms, p90 {samples[179]:.2f} ms, p99 {samples[197]:.2f} ms")

def memory(a, token, conv):
    # 200 answers of 200 words at one word a second: they stay open while measured.
    streams, conns = 200, []
    def open_stream():
        u = urllib.parse.urlparse(a.base)
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
        c.request("POST", f"/api/conversations/{conv['id']}/messages", json.dumps({"content": " ".join(["w"] * 200), "parentMessageId": None}),
                  {"content-type": "application/json", "accept": "text/event-stream", "authorization": f"Bearer {token}"})
        r = c.getresponse()
        r.fp.readline()
        conns.append(c)
    for _ in range(3):
        request(a.base, "GET", "/health/live")
    time.sleep(1)
    before = rss_kib(a.pid)
    threads = [threading.Thread(target=open_stream) for _ in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(2)
    after = rss_kib(a.pid)
    print(f"Open SSE streams: {streams}; RSS before {before/1024:.1f} MiB, after {after/1024:.1f} MiB; {(after-before)/streams:.1f} KiB per open stream")
    for c in conns:
        c.close()

if __name__ == "__main__":
    main()
