#!/usr/bin/env python3
"""PostgreSQL statements and transactions per chat message (POST /api/conversations/{id}/messages).

Not part of the test run. Starts nothing: point it at a running Jackcwf (built from this tree) whose
DATABASE_URL is the PostgreSQL named here, with pg_stat_statements loaded
(shared_preload_libraries=pg_stat_statements). It sends warm-up messages, resets the counters,
sends --messages JSON messages one after another (demo model), waits for the answers to be stored,
and prints the statements and committed transactions per message, with the statements by kind and
PostgreSQL's execution time and WAL records of each per message (pg_stat_statements' total_exec_time
and wal_records; planning not included unless pg_stat_statements.track_planning is on), the WAL
records and bytes of the statements and the server's WAL bytes (by the WAL position) per message,
and the size of the messages table's indexes after the run (pg_relation_size). An idle window of
the same length is measured after and subtracted (health checks, the lease sweeper and the usage ledger's flushes run
whether or not anyone chats). --prefill sends that many messages to the conversation first, so the
measured ones go to a long conversation (the service's MAX_MESSAGES_PER_CONVERSATION must allow it);
the messages table is analyzed before the measured run.

  python3 bench/chat_db_commands.py --base http://127.0.0.1:8080 --pg-port 5432 [--database postgres] [--prefill 495]
"""
import argparse
import http.client
import json
import subprocess
import time
import urllib.parse
import urllib.request
import uuid


def request(base, method, path, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method, headers={"content-type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            raw = r.read()
            is_json = "json" in (r.headers.get("content-type") or "")
            return r.status, (json.loads(raw) if raw and is_json else raw)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def psql(args, sql):
    out = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(args.pg_port), "-U", "postgres", "-d", args.database, "-At", "-F", "\t", "-c", sql],
                         check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def snapshot(args):
    # Every statement pg_stat_statements saw from the app's database, and the database's commits.
    rows = psql(args, "select regexp_replace(query, '\\s+', ' ', 'g'), sum(calls), sum(total_exec_time), sum(wal_records), sum(wal_bytes) from pg_stat_statements s "
                      f"join pg_database d on d.oid = s.dbid where d.datname = '{args.database}' and query not like '%pg_stat%' group by 1")
    commits = int(psql(args, f"select xact_commit from pg_stat_database where datname = '{args.database}'")[0][0])
    stmts = {q: (int(c), float(ms), int(w), int(b)) for q, c, ms, w, b in rows}
    # The statements' own WAL (exact once each ends; pg_stat_wal lags up to 10 s behind idle backends), and
    # the WAL position: everything the server wrote (autovacuum and checkpoints' full pages included).
    server_bytes = int(float(psql(args, "select pg_current_wal_lsn() - '0/0'::pg_lsn")[0][0]))
    return stmts, commits, (sum(x[2] for x in stmts.values()), sum(x[3] for x in stmts.values()), server_bytes)


def delta(before, after):
    (bq, bc, bw), (aq, ac, aw) = before, after
    zero = (0, 0.0, 0, 0)
    stmts = {q: tuple(a - b for a, b in zip(aq[q], bq.get(q, zero))) for q in aq if aq[q][0] - bq.get(q, zero)[0] > 0}
    return stmts, ac - bc, tuple(a - b for a, b in zip(aw, bw))


def kind(q):
    head = q.lstrip().split(None, 1)[0].upper() if q.strip() else "?"
    return head


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--base", required=True)
    p.add_argument("--pg-port", type=int, required=True)
    p.add_argument("--database", default="postgres")
    p.add_argument("--messages", type=int, default=100)
    p.add_argument("--prefill", type=int, default=0, help="messages sent to the conversation before the warm-up (a long conversation)")
    p.add_argument("--stream", action="store_true", help="ask for Server-Sent Events instead of JSON")
    args = p.parse_args()

    email, password = f"dbcount-{uuid.uuid4().hex[:8]}@example.com", "Bench-Passw0rd-1"
    request(args.base, "POST", "/api/auth/register", {"email": email, "password": password})
    _, tokens = request(args.base, "POST", "/api/auth/login", {"email": email, "password": password})
    auth = {"authorization": f"Bearer {tokens['accessToken']}"}
    if args.stream:
        auth["accept"] = "text/event-stream"
    _, conv = request(args.base, "POST", "/api/conversations", {}, auth)
    path = f"/api/conversations/{conv['id']}/messages"
    base = urllib.parse.urlparse(args.base)
    conn = http.client.HTTPConnection(base.hostname, base.port, timeout=60)  # kept for every message, as browsers and SDKs keep it

    def send(n):
        for i in range(n):
            conn.request("POST", path, json.dumps({"content": f"count the database commands {i}"}), {"content-type": "application/json", **auth})
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                raise SystemExit(f"message {i}: HTTP {r.status}")

    send(args.prefill + 5)
    time.sleep(3)  # the warm-up's answers and ledger rows are stored
    # Statistics of the messages as they now are, as autovacuum takes them within a minute of such a change: a
    # statement's plan cached while the table was still empty (a sequential scan) is made again.
    psql(args, "analyze messages")

    # Idle baseline over as long as the measured run takes (timed below, then repeated idle).
    before = snapshot(args)
    started = time.monotonic()
    send(args.messages)
    time.sleep(3)  # final writes, checkpoints and the ledger's batch flush
    elapsed = time.monotonic() - started
    run_stmts, run_commits, run_wal = delta(before, snapshot(args))
    idle_before = snapshot(args)
    time.sleep(elapsed)
    idle_stmts, idle_commits, idle_wal = delta(idle_before, snapshot(args))

    n = args.messages
    total = sum(c for c, *_ in run_stmts.values()) - sum(c for c, *_ in idle_stmts.values())
    commits = run_commits - idle_commits
    print(f"messages: {n} ({'SSE' if args.stream else 'JSON'}) to a conversation of {2 * (args.prefill + 5)} messages, run {elapsed:.1f} s, "
          f"idle window subtracted: {sum(c for c, *_ in idle_stmts.values())} statements, {idle_commits} commits")
    print(f"statements per message: {total / n:.2f}")
    print(f"committed transactions per message: {commits / n:.2f}")
    wal = [(r - i) / n for r, i in zip(run_wal, idle_wal)]
    print(f"WAL per message: the statements' {wal[0]:.1f} records, {wal[1]:,.0f} bytes; the server's {wal[2]:,.0f} bytes")
    by = {}
    for q, (c, ms, w, _) in run_stmts.items():
        ic, ims, iw, _ = idle_stmts.get(q, (0, 0.0, 0, 0))
        if c - ic > 0:
            by[q] = (c - ic, ms - ims, w - iw)
    print(f"execution time per message: {sum(ms for _, ms, _ in by.values()) * 1000 / n:.0f} µs")
    print("statements by query (per message, those seen at least once per 10 messages; execution µs and WAL records per message):")
    for q, (c, ms, w) in sorted(by.items(), key=lambda x: -x[1][0]):
        if c / n >= 0.1:
            print(f"  {c / n:5.2f} {ms * 1000 / n:7.0f} µs {w / n:5.1f} WAL  {kind(q):8} {' '.join(q.split())[:150]}")
    print("indexes of messages after the run (pg_relation_size):")
    for name, size in psql(args, "select indexrelid::regclass, pg_relation_size(indexrelid) from pg_index where indrelid = 'messages'::regclass order by 1::text"):
        print(f"  {int(size) / 1024:8.0f} kB  {name}")


if __name__ == "__main__":
    main()
