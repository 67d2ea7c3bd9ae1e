#!/usr/bin/env python3
"""Drives the OpenResty example over HTTP (scripts/test-openresty.sh starts it).

First a call in the set phase must be refused (it would block). Then these
phases, the clients in asyncio (one thread), while a process of its own pings
/ping (no database) every 10 ms and one psql samples pg_stat_activity every
20 ms:
  1. 200 requests, 20 at a time: 20 clients each create a user, two projects
     and a deployment, list the projects, walk the deployment through the
     status machine (and try one move it forbids), and ask /health.
  2. 20 requests at once holding a connection 0.2 s each (pg_sleep).
  3. a burst of 100 requests at once (100 new users).
  4. a burst of 100 requests at once holding a connection 0.2 s each: they
     wait their turn (12 or more per connection), none fails.
Every response is checked, then the stored rows. Fails when the server saw more
connections from the app than pool max x nginx workers, or when /ping took
50 ms or more under load. Prints the figures.
"""
import argparse
import asyncio
import http.client
import json
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

PING_LIMIT_MS = 50.0

failures = []
failures_lock = threading.Lock()


def fail(msg):
    with failures_lock:
        failures.append(msg)


class Client:
    def __init__(self, base):
        u = urllib.parse.urlparse(base)
        self.host, self.port = u.hostname, u.port

    async def arequest(self, method, path, body=None):
        return await arequest(self.host, self.port, method, path, body)

    def request(self, method, path, body=None):
        """One request on a new connection: (status, decoded JSON or text)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            data = json.dumps(body) if body is not None else None
            headers = {"Content-Type": "application/json"} if data else {}
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read().decode()
            try:
                return resp.status, json.loads(raw)
            except ValueError:
                return resp.status, raw
        finally:
            conn.close()


async def arequest(host, port, method, path, body=None):
    """One request on a new connection, from asyncio: (status, decoded JSON or text)."""
    data = json.dumps(body).encode() if body is not None else b""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        head = (f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n")
        writer.write(head.encode() + data)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        out, rest = b"", payload
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            if size == 0:
                break
            out, rest = out + rest[:size], rest[size + 2:]
        payload = out
    text = payload.decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def psql(dbname, sql):
    out = subprocess.run(["psql", "-X", "-A", "-t", "-q", "-d", dbname, "-c", sql],
                         check=True, capture_output=True, text=True).stdout
    return out.strip()


def expect(what, got_status, want_status, body, check=None):
    if got_status != want_status:
        fail(f"{what}: HTTP {got_status} (wanted {want_status}): {body}")
        return False
    if check is not None and not check(body):
        fail(f"{what}: unexpected body {body}")
        return False
    return True


async def scenario(c, i, requests):
    """10 requests: the life of one user, checked step by step."""
    req = c.arequest
    email = f"load{i}@example.com"
    s, u = await req("POST", "/users", {"email": email, "password_hash": "h" * 20, "plan_type": "pro"})
    requests.append(1)
    if not expect("create user", s, 201, u, lambda b: b.get("email") == email and "password_hash" not in b
                  and b.get("plan_type") == "pro" and len(b.get("id", "")) == 36):
        return
    uid = u["id"]
    projects = []
    for k in range(2):
        s, p = await req("POST", f"/users/{uid}/projects", {"name": f"p{i}-{k}", "description": "load"})
        requests.append(1)
        if not expect("create project", s, 201, p, lambda b, k=k: b.get("name") == f"p{i}-{k}"
                      and b.get("user_id") == uid):
            return
        projects.append(p["id"])
    s, d = await req("POST", f"/projects/{projects[0]}/deployments",
                     {"runtime_type": "node", "public_url": f"https://app{i}.example.com",
                      "db_connection_info": {"host": "db", "port": 5432, "replica": None}})
    requests.append(1)
    if not expect("create deployment", s, 201, d, lambda b: b.get("status") == "pending"
                  and b.get("project_id") == projects[0]
                  and b.get("db_connection_info") == {"host": "db", "port": 5432, "replica": None}):
        return
    did = d["id"]
    s, lst = await req("GET", f"/users/{uid}/projects")
    requests.append(1)
    expect("list projects", s, 200, lst, lambda b: sorted(p["id"] for p in b.get("projects", []))
           == sorted(projects))
    for status in ("building", "deploying", "running"):
        s, d = await req("PUT", f"/deployments/{did}/status", {"status": status})
        requests.append(1)
        if not expect(f"move to {status}", s, 200, d, lambda b, st=status: b.get("status") == st):
            return
    s, e = await req("PUT", f"/deployments/{did}/status", {"status": "building"})
    requests.append(1)
    expect("forbidden move", s, 409, e, lambda b: b.get("error", {}).get("kind") == "invalid_transition")
    s, h = await req("GET", "/health")
    requests.append(1)
    expect("health", s, 200, h, lambda b: b.get("status") == "healthy" and isinstance(b.get("pool"), dict))


def run_clients(n, client):
    """Runs client(i) for i in 0..n-1 all at once (asyncio, one thread: the
    driver stays light next to the server it measures); returns the seconds."""
    async def one(i):
        try:
            await client(i)
        except Exception as exc:  # a refused connection, a timeout: a failure, not a crash
            fail(f"client {i}: {exc!r}")

    async def all_of_them():
        await asyncio.gather(*(one(i) for i in range(n)))
    t0 = time.monotonic()
    asyncio.run(all_of_them())
    return time.monotonic() - t0


def ping_loop(base):
    """--ping URL: pings every 10 ms until stdin closes or says stop; prints
    each latency in ms (or "error")."""
    c = Client(base)
    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), done.set()), daemon=True).start()
    out = []
    while not done.is_set():
        t0 = time.monotonic()
        try:
            ok = c.request("GET", "/ping")[0] == 200
        except OSError:
            ok = False
        out.append(f"{(time.monotonic() - t0) * 1000:.2f}" if ok else "error")
        time.sleep(0.01)
    print("\n".join(out))
    return 0


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--ping":
        return ping_loop(sys.argv[2])
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--dbname", required=True)
    ap.add_argument("--app", required=True)
    ap.add_argument("--workers", type=int, required=True)
    ap.add_argument("--pool-max", type=int, required=True)
    a = ap.parse_args()
    c = Client(a.url)
    limit = a.workers * a.pool_max

    # nginx is starting: wait for /ping
    deadline = time.monotonic() + 10
    while True:
        try:
            if c.request("GET", "/ping")[0] == 200:
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            print("test-openresty: nginx did not answer /ping within 10 s", file=sys.stderr)
            return 1
        time.sleep(0.05)
    s, h = c.request("GET", "/health")
    if s != 200:
        print(f"test-openresty: /health before the load: HTTP {s}: {h}", file=sys.stderr)
        return 1

    # a call where it would block the event loop (the set phase) is refused
    s, r = c.request("GET", "/test/refused")
    if s != 200 or not str(r).startswith("invalid_input: ") or "set phase" not in str(r):
        print(f"test-openresty: a call in the set phase was not refused: HTTP {s}: {r}", file=sys.stderr)
        return 1

    pings, samples = [], []

    # /ping runs in a process of its own: in this one, the clients' threads
    # would hold it up on Python's interpreter lock and blur the figure.
    ping_proc = subprocess.Popen([sys.executable, __file__, "--ping", a.url], stdout=subprocess.PIPE,
                                 stdin=subprocess.PIPE, text=True)

    # one psql polls pg_stat_activity every 20 ms (one connection, not one per sample)
    count_sql = f"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{a.app}'"
    sampler = subprocess.Popen(["psql", "-X", "-A", "-t", "-q", "-d", a.dbname], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    sampler.stdin.write(count_sql + " \\watch 0.02\n")
    sampler.stdin.flush()

    def read_samples():
        for line in sampler.stdout:
            if line.strip().isdigit():
                samples.append(int(line))
    bg = [threading.Thread(target=read_samples)]
    for t in bg:
        t.start()
    while not samples:
        time.sleep(0.01)

    t_all = time.monotonic()
    requests = []
    t_load = run_clients(20, lambda i: scenario(c, i, requests))

    async def slow(i):
        s, b = await c.arequest("GET", "/test/slow")
        expect("slow query", s, 200, b)
    t_slow = run_clients(20, slow)

    async def burst(i):
        email = f"burst{i}@example.com"
        s, u = await c.arequest("POST", "/users", {"email": email, "password_hash": "h" * 20})
        expect("burst create user", s, 201, u, lambda b: b.get("email") == email and b.get("plan_type") == "free")
    t_burst = run_clients(100, burst)
    t_slow_burst = run_clients(100, slow)
    total = time.monotonic() - t_all
    time.sleep(0.05)  # a last sample after the load
    sampler.terminate()
    for t in bg:
        t.join()
    sampler.wait()
    out, _ = ping_proc.communicate("stop\n")
    for line in out.split():
        if line == "error":
            fail("/ping failed under load")
        else:
            pings.append(float(line))

    # the stored rows
    def count(sql, want, what):
        got = int(psql(a.dbname, sql))
        if got != want:
            fail(f"stored rows: {what}: {got}, wanted {want}")
    count("SELECT count(*) FROM users WHERE email LIKE 'load%'", 20, "users from the load")
    count("SELECT count(*) FROM users WHERE email LIKE 'burst%' AND plan_type = 'free'", 100, "users from the burst")
    count("SELECT count(*) FROM projects", 40, "projects")
    count("SELECT count(*) FROM deployments WHERE status = 'running'", 20, "running deployments")
    count("SELECT count(*) FROM deployments", 20, "deployments")
    count("SELECT count(*) FROM deployments d JOIN projects p ON p.id = d.project_id "
          "JOIN users u ON u.id = p.user_id WHERE p.name = 'p' || substr(u.email, 5, "
          "position('@' in u.email) - 5) || '-0'", 20, "deployments on each user's first project")

    peak = max(samples) if samples else 0
    if not samples:
        fail("no pg_stat_activity sample was taken")
    if peak > limit:
        fail(f"peak server connections {peak} > pool max {a.pool_max} x {a.workers} nginx workers")
    ping_max = max(pings) if pings else float("inf")
    ping_p50 = statistics.median(pings) if pings else float("inf")
    if ping_max >= PING_LIMIT_MS:
        fail(f"/ping took {ping_max:.1f} ms under load (limit {PING_LIMIT_MS:.0f} ms)")

    print(f"openresty: {a.workers} nginx workers x pool max {a.pool_max} (thread_pool threads=4 each)")
    print(f"  load: {len(requests)} requests, 20 at a time: {t_load:.2f} s")
    print(f"  slow: 20 requests at once, 0.2 s query each: {t_slow:.2f} s")
    print(f"  burst: 100 requests at once: {t_burst:.2f} s")
    print(f"  slow burst: 100 requests at once, 0.2 s query each: {t_slow_burst:.2f} s")
    print(f"  peak server connections from the app: {peak} (limit {limit}; {len(samples)} samples)")
    print(f"  /ping under load: max {ping_max:.1f} ms, p50 {ping_p50:.1f} ms ({len(pings)} pings)")
    print(f"  total {total:.2f} s, failures: {len(failures)}")
    for f in failures[:20]:
        print("  FAIL " + f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
