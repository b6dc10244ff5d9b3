"""Soak: the production server under many loopback clients, then under rerun abuse.

    .venv/bin/python bench/bench_soak.py [--clients 64] [--seconds 30] [--abusers 20]
                                         [--readers 16] [--workers 2] [--threads 4]

Uses the answers and the data folder of the environment (KB_ANSWERS, KB_DATA; default the
project's answers/ and .kb/); every answer's own settings are computed first (not timed).
Starts gunicorn as the README runs it (``-c python:kb.gunicorn_conf -w 2 --threads 4``) on
a free loopback port, then:

1. Mixed traffic: ``--clients`` keep-alive connections for ``--seconds``, each request drawn
   from a fixed mix: answer pages (plain and gzipped), their JSON, searches, figures, the
   home page, /healthz, unknown answers (404), bad parameters (400), old slugs (301, where
   the answers have any) and reruns at new seeds (each a new computation: 200 when computed in the slot, 503 when the
   slot is taken). Prints requests, statuses, errors (connection failures and any 5xx but a
   rerun's 503), p50/p99 per kind, and the workers' memory (largest resident set seen).
2. Rerun abuse: ``--abusers`` connections asking only for new seeds (each a computation)
   while ``--readers`` connections read cached answer pages, for ``--seconds``: the readers'
   p50/p99 against theirs alone (the same readers for ``--seconds`` without abusers first).

Prints tables only; nothing here is a test.
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from kb.config import Settings
from kb.web.app import create_app


@dataclass
class Seen:
    """What the clients of one kind of request saw."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)


def percentile(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _client(port: int, requests, deadline: float, seen: dict[str, Seen]) -> None:
    """One keep-alive connection: requests from the ``requests`` iterator until ``deadline``.
    Each is (kind, path, extra header lines, statuses that are no error)."""
    reader = writer = None
    while time.perf_counter() < deadline:
        kind, path, extra, fine = next(requests)
        record = seen.setdefault(kind, Seen())
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            started = time.perf_counter()
            writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}\r\n"
                         .encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 120)
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            headers = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
            await reader.readexactly(int(headers.get("content-length", 0)))
            record.latencies.append(time.perf_counter() - started)
            record.statuses[status] += 1
            if status not in fine:
                record.errors[str(status)] += 1
            if headers.get("connection", "").lower() == "close":
                writer.close()
                writer = None
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError) as exc:
            record.errors[type(exc).__name__] += 1
            if writer is not None:
                writer.close()
            writer = None
    if writer is not None:
        writer.close()


def drive(port: int, groups: list[tuple[int, object]], seconds: float) -> dict[str, Seen]:
    """``groups``: (connections, a function giving each connection its request iterator)."""
    seen: dict[str, Seen] = {}

    async def run():
        deadline = time.perf_counter() + seconds
        await asyncio.gather(*(_client(port, make(k), deadline, seen)
                               for count, make in groups for k in range(count)))

    asyncio.run(run())
    return seen


class Memory:
    """Samples the resident set of the server's processes twice a second."""

    def __init__(self, master: int):
        self.master, self.peak_worker, self.peak_total, self.peak_child = master, 0, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def rss(pid: int) -> int:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    @staticmethod
    def children(pid: int) -> list[int]:
        found = []
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                found += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
        return found

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            workers = self.children(self.master)
            total = self.rss(self.master)
            for worker in workers:
                size = self.rss(worker)
                self.peak_worker = max(self.peak_worker, size)
                total += size
                for child in self.children(worker):  # computations
                    child_size = self.rss(child)
                    self.peak_child = max(self.peak_child, child_size)
                    total += child_size
            self.peak_total = max(self.peak_total, total)

    def stop(self) -> str:
        self._stop.set()
        self._thread.join()
        mib = 2**20
        return (f"largest resident set: worker {self.peak_worker / mib:.0f} MiB, computation "
                f"{self.peak_child / mib:.0f} MiB, all processes together "
                f"{self.peak_total / mib:.0f} MiB")


def table(seen: dict[str, Seen], seconds: float) -> None:
    print("| requests | count | per s | statuses | errors | p50 ms | p99 ms |")
    print("|---|---:|---:|---|---|---:|---:|")
    everything = Seen()
    for kind in sorted(seen):
        record = seen[kind]
        everything.latencies += record.latencies
        everything.statuses += record.statuses
        everything.errors += record.errors
        _row(kind, record, seconds)
    _row("**all**", everything, seconds)


def _row(kind: str, record: Seen, seconds: float) -> None:
    ms = [s * 1000 for s in record.latencies]
    statuses = " ".join(f"{s}:{n}" for s, n in sorted(record.statuses.items()))
    errors = " ".join(f"{e}:{n}" for e, n in sorted(record.errors.items())) or "0"
    print(f"| {kind} | {len(ms)} | {len(ms) / seconds:.0f} | {statuses} | {errors} | "
          f"{percentile(ms, 0.5):.1f} | {percentile(ms, 0.99):.1f} |")


def mixed(answers, rng: random.Random, seeds):
    slugs = [a.slug for a in answers]
    figures = [f"/a/{a.slug}/figures/{f.name}.{fmt}" for a in answers
               for d in a.demonstrations for f in d.figures for fmt in ("png", "svg")]
    aliases = [f"/a/{alias}" for a in answers for alias in a.aliases]
    searches = ["why+does+batch+norm+speed+up+training", "gamma+beta", "covariate+shift",
                "noise+like+dropout", "batchnrom", "running+averages"]
    kinds = [
        (30, "answer page", lambda: (f"/a/{rng.choice(slugs)}", "", {200})),
        (15, "answer page gzip", lambda: (f"/a/{rng.choice(slugs)}", "Accept-Encoding: gzip\r\n",
                                          {200})),
        (10, "answer JSON", lambda: (f"/api/answers/{rng.choice(slugs)}", "", {200})),
        (15, "search", lambda: (f"/search?q={rng.choice(searches)}", "", {200})),
        (10, "figure", lambda: (rng.choice(figures), "", {200})),
        (5, "home", lambda: ("/", "", {200})),
        (5, "healthz", lambda: ("/healthz", "", {200})),
        (3, "unknown answer 404", lambda: (f"/a/no-such-{rng.randrange(10**6)}", "", {404})),
        (3, "bad parameter 400", lambda: (f"/a/{rng.choice(slugs)}?seed=-{rng.randrange(9)}",
                                          "", {400})),
        (2, "rerun new seed", lambda: (f"/a/{rng.choice(slugs)}?seed={next(seeds)}", "",
                                       {200, 503})),
    ]
    if aliases:  # old slugs, where the answers have any
        kinds.append((2, "old slug 301", lambda: (rng.choice(aliases), "", {301})))
    weights = [w for w, _, _ in kinds]

    def requests(k: int):
        while True:
            _, kind, make = rng.choices(kinds, weights)[0]
            path, extra, fine = make()
            yield kind, path, extra, fine

    return requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--abusers", type=int, default=20)
    parser.add_argument("--readers", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()

    settings = Settings.from_env()
    site = create_app(settings).extensions["kb"]
    started = time.perf_counter()
    site.warm(samples=False)  # the answers' own settings and figures, as a server's warm-up
    print(f"own settings of {len(site.answers.current().all())} answers computed in "
          f"{time.perf_counter() - started:.1f} s")
    answers = site.answers.current().all()
    slugs = [a.slug for a in answers]
    seeds = itertools.count(random.Random().randrange(10**6, 10**9))  # new each run

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "gunicorn", "-c", "python:kb.gunicorn_conf",
               "-w", str(args.workers), "--threads", str(args.threads),
               "-b", f"127.0.0.1:{port}", "--log-level", "warning", "kb.wsgi:app"]
    print("$ " + " ".join(["gunicorn", *command[3:]]))
    server = subprocess.Popen(command, env={**os.environ, "KB_ANSWERS": str(
        settings.answers_dir), "KB_DATA": str(settings.data_dir)})
    try:
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise SystemExit("gunicorn did not answer /healthz within 60 s")
        load = os.getloadavg()[0]
        print(f"\n## 1. mixed traffic: {args.clients} clients, {args.seconds:g} s "
              f"(load average {load:.1f} at the start)\n")
        memory = Memory(server.pid)
        rng = random.Random(1)
        seen = drive(port, [(args.clients, mixed(answers, rng, seeds))], args.seconds)
        table(seen, args.seconds)
        print(f"\n{memory.stop()}")

        def readers(k: int):
            for i in itertools.count(k):
                yield "reader (cached page)", f"/a/{slugs[i % len(slugs)]}", "", {200}

        def abusers(k: int):
            while True:
                yield "abuser (new seed)", f"/a/{slugs[k % len(slugs)]}?seed={next(seeds)}", \
                    "", {200, 503}

        print(f"\n## 2. rerun abuse: {args.readers} readers alone, then with {args.abusers} "
              f"abusers, {args.seconds:g} s each\n")
        alone = drive(port, [(args.readers, readers)], args.seconds)
        memory = Memory(server.pid)
        abused = drive(port, [(args.readers, readers), (args.abusers, abusers)], args.seconds)
        print("readers alone:")
        table(alone, args.seconds)
        print("\nreaders with abusers:")
        table(abused, args.seconds)
        print(f"\n{memory.stop()}; load average {os.getloadavg()[0]:.1f} at the end")
    finally:
        server.terminate()
        server.wait(60)


if __name__ == "__main__":
    main()
