"""Benchmark: the attacks of issue 12 against a real ``tiepdon serve`` (separate process,
loopback, staff login required), each with what the desk still gets meanwhile.

- 200 concurrent wrong passwords for one account: how many reached the password hash, and
  whether the right password is then refused (the lockout holds);
- a 2 MB body: how fast it is refused, and /api/v1/health's time while it is sent;
- 1 000 event streams opened by one client: how many were accepted, and a verification's
  time with them open versus before;
- the daemon's resident memory idle, after the floods, and after they closed.

    .venv/bin/python -m bench.security
"""

from __future__ import annotations

import concurrent.futures
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench.verify import BODIES, TIEPDON, machine, pct, start, stop
from terminal.demo import demo_environment

PASSWORD = "mat-khau-bench"


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(found.group(1)) / 1024 if found else float("nan")


def login(url: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=url, timeout=30)
    r = client.post("/login", data={"username": "bench", "password": PASSWORD})
    assert r.status_code == 303, r.text
    csrf = re.search(r'"csrf": "([0-9a-f]{32})"', client.get("/").text)
    assert csrf
    client.headers["X-CSRF-Token"] = csrf.group(1)
    return client, csrf.group(1)


def verify_ms(client: httpx.Client, n: int) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        r = client.post("/api/v1/verify", json=BODIES[i % 2])
        out.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200, r.text
    return out


def _post_from(address: str, url: str, username: str) -> tuple[int, float]:
    with httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=60) as c:
        t0 = time.perf_counter()
        code = c.post(f"{url}/login", data={"username": username, "password": "wrong-pw"}
                      ).status_code
        return code, (time.perf_counter() - t0) * 1000


def unknown_vs_known(url: str) -> tuple[list[float], list[float]]:
    """Wrong passwords for an unknown and a known name, each from its own address."""
    unknown = [_post_from(f"127.0.2.{i + 1}", url, f"nobody{i}")[1] for i in range(5)]
    known = [_post_from(f"127.0.3.{i + 1}", url, "bench2")[1] for i in range(4)]
    return unknown, known


def parallel_logins(url: str) -> tuple[list[float], float]:
    """60 logins at once from 60 addresses; /api/v1/health's times meanwhile."""
    health: list[float] = []
    with concurrent.futures.ThreadPoolExecutor(60) as pool:
        t0 = time.perf_counter()
        futures = [pool.submit(_post_from, f"127.0.4.{i + 1}", url, f"user{i}")
                   for i in range(60)]
        with httpx.Client(base_url=url, timeout=30) as c:
            while not all(f.done() for f in futures):
                h0 = time.perf_counter()
                c.get("/api/v1/health")
                health.append((time.perf_counter() - h0) * 1000)
                time.sleep(0.02)
        total = time.perf_counter() - t0
    return health, total


def lockout(url: str) -> tuple[int, int, int]:
    def attempt(i: int) -> int:
        try:
            return httpx.post(f"{url}/login", data={"username": "bench", "password": f"x{i}"},
                              timeout=60).status_code
        except httpx.TransportError:
            return 0

    with concurrent.futures.ThreadPoolExecutor(64) as pool:
        codes = list(pool.map(attempt, range(200)))
    right = httpx.post(f"{url}/login", data={"username": "bench", "password": PASSWORD},
                       timeout=60).status_code
    return codes.count(303), len(codes), right


def big_body(url: str, client: httpx.Client) -> tuple[float, int, list[float]]:
    health: list[float] = []
    done = threading.Event()

    def probe() -> None:
        with httpx.Client(base_url=url, timeout=10) as c:
            while not done.is_set():
                t0 = time.perf_counter()
                c.get("/api/v1/health")
                health.append((time.perf_counter() - t0) * 1000)
                time.sleep(0.01)

    prober = threading.Thread(target=probe)
    prober.start()
    time.sleep(0.1)
    body = b'{"qr": "' + b"A" * 2_000_000 + b'"}'
    t0 = time.perf_counter()
    r = client.post("/api/v1/verify", content=body,
                    headers={"content-type": "application/json"})
    refused_ms = (time.perf_counter() - t0) * 1000
    time.sleep(0.2)
    done.set()
    prober.join()
    return refused_ms, r.status_code, health


def streams(host: str, port: int, cookie: str, n: int) -> tuple[int, list[socket.socket]]:
    socks: list[socket.socket] = []
    accepted = 0
    for _ in range(n):
        try:
            s = socket.create_connection((host, port), timeout=5)
            s.sendall(f"GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                      f"Cookie: tiepdon_session={cookie}\r\n\r\n".encode())
            head = s.recv(12)
        except OSError:
            continue
        socks.append(s)
        accepted += head[9:12] == b"200"
    return accepted, socks


def main() -> int:
    sim, sim_url = start(["registry-sim", "--port", "0"], {}, "stdout")
    data = Path(tempfile.mkdtemp(prefix="tiepdon-bench-"))
    users = data / "users.toml"
    for name in ("bench", "bench2"):  # bench2: the known name of the timing row
        subprocess.run([TIEPDON, "user", "add", name, "--name", "Nguyễn Văn Bàn",
                        "--officer-id", "001088001234", "--users-file", str(users)],
                       input=PASSWORD + "\n", text=True, check=True, capture_output=True)
    env = {**demo_environment(sim_url, data), "TIEPDON_HTTP_PORT": "0",
           "TIEPDON_AUTH_REQUIRED": "true", "TIEPDON_AUTH_USERS_FILE": str(users)}
    daemon, url = start(["serve"], env, "stderr")
    port = int(url.rsplit(":", 1)[1].strip("/"))
    try:
        client, _ = login(url)
        cookie = next(str(c.value) for c in client.cookies.jar)
        verify_ms(client, 20)  # warm
        idle = rss_mib(daemon.pid)
        before = verify_ms(client, 100)
        refused_ms, code, health = big_body(url, client)
        accepted, socks = streams("127.0.0.1", port, cookie, 1000)
        during = verify_ms(client, 100)
        flooded = rss_mib(daemon.pid)
        for s in socks:
            s.close()
        time.sleep(1)
        after = rss_mib(daemon.pid)
        unknown, known = unknown_vs_known(url)
        login_health, login_seconds = parallel_logins(url)
        reached, attempts, right = lockout(url)
    finally:
        stop(daemon)
        stop(sim)

    print(f"machine: {machine()}")
    print("terminal: tiepdon serve (staff login required, loopback); attacker: the same host")
    print("| attack | measured | desk meanwhile |")
    print("|---|---|---|")
    print(f"| {attempts} concurrent wrong passwords, one account | {reached} reached the hash; "
          f"right password then answered {right} (locked) | — |")
    print(f"| wrong password, unknown vs known name | p50 {statistics.median(unknown):.0f} ms "
          f"vs {statistics.median(known):.0f} ms (dummy hash) | — |")
    print(f"| 60 logins at once, 60 addresses | all answered in {login_seconds:.1f} s "
          f"(scrypt N=2^17, 2 workers, 8 waiting, the rest told to retry) "
          f"| /api/v1/health p50 {pct(login_health, 50):.1f} ms, "
          f"max {max(login_health):.1f} ms |")
    print(f"| 2 MB body to /api/v1/verify | refused {code} in {refused_ms:.1f} ms "
          f"| /api/v1/health p50 {pct(health, 50):.1f} ms, max {max(health):.1f} ms "
          f"({len(health)} probes) |")
    print(f"| 1 000 event streams from one client | {accepted} accepted, the rest refused "
          f"(429 or connection closed) | verify p50 {statistics.median(before):.1f} → "
          f"{statistics.median(during):.1f} ms, p95 {pct(before, 95):.1f} → "
          f"{pct(during, 95):.1f} ms |")
    print(f"| resident memory | idle {idle:.1f} MiB, with the streams open {flooded:.1f} MiB, "
          f"after they closed {after:.1f} MiB | — |")
    ok = (reached <= 5 and right == 429 and code == 413 and refused_ms < 100
          and max(health) < 100
          and statistics.median(during) - statistics.median(before) < 20)
    print(f"targets: lockout ≤ 5 hashes and held; 2 MB refused < 100 ms with health < 100 ms; "
          f"streams add < 20 ms to a verification: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
