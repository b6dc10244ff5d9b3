"""Service speed: warm in-process latencies, then HTTP throughput under gunicorn on loopback.

    .venv/bin/python bench/bench_service.py [--seconds 10] [--clients 32] [--workers 2]
                                            [--threads 4] [--rounds 500]

Uses the answers and the data folder of the environment (KB_ANSWERS, KB_DATA; default the
project's answers/ and .kb/), computing any missing demonstration first (not timed).

1. In process (Flask's test client): p50/p99 of cached answer pages, of answer pages rendered
   again from cached demonstration results, and of searches.
2. Over HTTP: gunicorn (``--workers`` processes, ``--threads`` threads each: the README's
   production command) on a free loopback port, driven by ``--clients`` concurrent
   keep-alive connections of a small asyncio client in this file, ``--seconds`` per route
   (in turns of a few seconds, so that every route shares the machine's other work alike):
   requests per second, p50/p99 and errors for /healthz (the floor: the same app doing almost
   nothing), answer pages (plain, and gzipped as browsers ask), searches and figure PNGs,
   and the CPU time the gunicorn workers spent per request (read from /proc around each
   turn): on a machine shared with other work the rates follow that work, while the CPU
   time per request, and the rate it allows (its inverse, as a share of the floor's), do
   not. Target: answer pages at >= 50% of the floor's rate. Prints tables only; nothing
   here is a test.
"""
from __future__ import annotations

import argparse
import asyncio
import math
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from kb.config import Settings
from kb.web.app import create_app

SLICE = 2.0  # seconds of one route's turn over HTTP

SEARCHES = [
    "why does batch norm speed up training",
    "gamma and beta undo the normalization",
    "running averages during training",
    "covariate shift black cats colored cats",
    "noise like dropout",
    "larger mini batch less regularization",
    "gradient of batch norm backward",
    "later layers robust to earlier layers",
    "batchnrom",  # a typo: exercises the "did you mean" path
]
SEARCH_PAGES = [f"/search?q={query.replace(' ', '+')}" for query in SEARCHES]


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency_row(name: str, seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return (f"| {name} | {len(ms)} | {percentile(ms, 0.5):.2f} | {percentile(ms, 0.99):.2f} |")


def in_process(settings: Settings, rounds: int) -> tuple[list[str], list[str]]:
    """Warm the caches, then time requests through the test client; returns the answer and
    figure paths for the HTTP part."""
    app = create_app(settings)
    site = app.extensions["kb"]
    started = time.perf_counter()
    count = site.warm()
    print(f"warmed {count} answers (demonstrations and figures) in "
          f"{time.perf_counter() - started:.1f} s")
    client = app.test_client()
    answers = site.answers.current().all()
    pages = [f"/a/{a.slug}" for a in answers]
    figures = [f"/a/{a.slug}/figures/{f.name}.png"
               for a in answers for d in a.demonstrations for f in d.figures]

    def timed(paths: list[str], clear=None, status: int = 200) -> list[float]:
        for path in paths:  # first requests fill the caches
            assert client.get(path).status_code == status, path
        seconds = []
        for i in range(rounds):
            if clear is not None:
                clear()
            path = paths[i % len(paths)]
            t0 = time.perf_counter()
            response = client.get(path)
            seconds.append(time.perf_counter() - t0)
            assert response.status_code == status, path
        return seconds

    def forget_pages():
        site.pages.clear()
        site.outcomes.clear()

    print()
    print("| in process (test client) | requests | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|")
    print(latency_row("answer page, cached HTML", timed(pages)))
    print(latency_row("answer page, rendered from cached results", timed(pages, forget_pages)))
    # Settings that cannot be run: the answer at its own settings and the form with the reason.
    print(latency_row("answer page, refused settings (400)",
                      timed([f"{path}?seed=-1" for path in pages], status=400)))
    print(latency_row("search page", timed(SEARCH_PAGES)))
    print(latency_row("/api/search", timed(["/api" + path for path in SEARCH_PAGES])))
    print(latency_row("figure PNG, cached", timed(figures)))
    print(latency_row("/healthz", timed(["/healthz"])))
    return pages, figures


# --- HTTP load ----------------------------------------------------------------------------


async def _client(host: str, port: int, paths: list[str], extra: str, offset: int,
                  deadline: float, latencies: list[float], errors: list[str]) -> None:
    """One keep-alive connection sending requests back to back until ``deadline``."""
    reader = writer = None
    i = offset
    while time.perf_counter() < deadline:
        path = paths[i % len(paths)]
        i += 1
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            t0 = time.perf_counter()
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            fields = (line.partition(":") for line in lines[1:] if line)
            headers = {name.lower(): value.strip() for name, _, value in fields}
            await reader.readexactly(int(headers.get("content-length", 0)))
            latencies.append(time.perf_counter() - t0)
            if status != 200:
                errors.append(f"{status} {path}")
            if headers.get("connection", "").lower() == "close":
                writer.close()
                writer = None
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            errors.append(f"{type(exc).__name__} {path}")
            if writer is not None:
                writer.close()
            writer = None
    if writer is not None:
        writer.close()


@dataclass
class Load:
    """What the clients saw on one route, over one or more runs, and the CPU seconds the
    server's workers spent meanwhile."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    cpu: float = 0.0

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    @property
    def cpu_per_request(self) -> float:
        return self.cpu / len(self.latencies)


def workers_cpu(master: int) -> float:
    """CPU seconds (user + system) used so far by the children of process ``master``."""
    total = 0
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    for pid in children:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except FileNotFoundError:  # a worker that just exited
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


def load(host: str, port: int, paths: list[str], clients: int, seconds: float,
         headers: dict[str, str] | None, into: Load) -> None:
    """``clients`` connections requesting ``paths`` in turn for ``seconds``; adds to ``into``."""
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())

    async def run():
        deadline = time.perf_counter() + seconds
        await asyncio.gather(*(
            _client(host, port, paths, extra, k, deadline, into.latencies, into.errors)
            for k in range(clients)))

    started = time.perf_counter()
    asyncio.run(run())
    into.seconds += time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def over_http(settings: Settings, pages: list[str], figures: list[str], args) -> None:
    port = free_port()
    env = {**os.environ, "KB_ANSWERS": str(settings.answers_dir), "KB_DATA": str(settings.data_dir)}
    if settings.base_url:
        env["KB_BASE_URL"] = settings.base_url
    command = [sys.executable, "-m", "gunicorn", "-w", str(args.workers), "--threads",
               str(args.threads), "-b", f"127.0.0.1:{port}", "--log-level", "warning",
               "kb.wsgi:app"]
    print()
    print("$ " + " ".join(command[2:]).replace(sys.executable, "python"))
    server = subprocess.Popen(command, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):  # up to 30 s to start
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise SystemExit("gunicorn did not answer /healthz within 30 s")
        load_before = os.getloadavg()[0]
        gzip = {"Accept-Encoding": "gzip"}  # as browsers ask
        routes = [("/healthz (floor)", ["/healthz"], None), ("answer pages", pages, None),
                  ("answer pages, gzip", pages, gzip), ("search pages", SEARCH_PAGES, None),
                  ("figure PNGs", figures, None)]
        # Every worker keeps its own in-memory caches: warm them all with a short run first.
        for _, paths, headers in routes[1:]:
            load("127.0.0.1", port, paths, args.clients, 2.0, headers, Load())
        # The routes take turns, SLICE seconds each, so that all of them share whatever else
        # the machine is doing meanwhile and their ratios stay fair.
        loads = {name: Load() for name, _, _ in routes}
        for _ in range(math.ceil(args.seconds / SLICE)):
            for name, paths, headers in routes:
                cpu_before = workers_cpu(server.pid)
                load("127.0.0.1", port, paths, args.clients, SLICE, headers, loads[name])
                loads[name].cpu += workers_cpu(server.pid) - cpu_before
        print(f"{args.clients} concurrent keep-alive clients, {args.seconds:g} s per route "
              f"in turns of {SLICE:g} s; load average before: {load_before:.2f}, "
              f"after: {os.getloadavg()[0]:.2f}")
        print()
        print("| over HTTP | requests/s | % of floor | p50 ms | p99 ms | errors "
              "| server CPU µs per request | % of floor by CPU |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        floor = loads[routes[0][0]]
        for name, result in loads.items():
            ms = [s * 1000 for s in result.latencies]
            print(f"| {name} | {result.rps:.0f} | {100 * result.rps / floor.rps:.0f}% | "
                  f"{percentile(ms, 0.5):.1f} | {percentile(ms, 0.99):.1f} | "
                  f"{len(result.errors)} | {1e6 * result.cpu_per_request:.0f} | "
                  f"{100 * floor.cpu_per_request / result.cpu_per_request:.0f}% |")
            for error in sorted(set(result.errors))[:5]:
                print(f"    e.g. {error}")
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per route over HTTP")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4, help="per worker (1: sync workers)")
    parser.add_argument("--rounds", type=int, default=500, help="requests per in-process row")
    args = parser.parse_args()
    settings = Settings.from_env()
    if not any(Path(settings.answers_dir).glob("*.md")):
        print(f"no answers in {settings.answers_dir}", file=sys.stderr)
        return 2
    print(f"answers: {settings.answers_dir}  data: {settings.data_dir}  cores: {os.cpu_count()}")
    pages, figures = in_process(settings, args.rounds)
    over_http(settings, pages, figures, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
