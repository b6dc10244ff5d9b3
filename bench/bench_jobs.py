"""Beyond one machine: one section per part, each with its flag; every section by default.

    .venv/bin/python bench/bench_jobs.py [--queue] [--queue-jobs 60]
                                         [--build] [--build-jobs 2] [--build-answers K]
                                         [--build-data DIR]

``--queue``: reruns through the RQ queue (``KB_QUEUE_URL``), with 1 and then 2 ``kb worker``
processes: Debian's redis-server on a free loopback port, an empty data folder, and
``--queue-jobs`` distinct jobs (a small real experiment, ``bn_scale_invariance``, at distinct
seeds) submitted at once as the service submits them. Prints jobs per second (first submit to
last result in the cache) and the queue latency (submit to start, from RQ's own timestamps),
p50 and p99. Each job's computation is forked under the limits, as in service.

``--build``: the static build (``kb build``) of the project's answers, timed three ways:

- cold: an empty demonstration cache (a temporary data folder, removed afterwards) and an
  empty output folder: every demonstration, figure and finding's sample is computed;
- warm: the cache that build filled, a new output folder: nothing computed, every file
  written;
- unchanged: the same cache and output folder again: nothing computed, nothing written
  (what a rebuild after no change costs).

Answers are built ``--build-jobs`` at a time. The cold build computes every answer's sample
of seeds (the work of ``kb check --jobs 2`` with each answer's sample, plus figures); to keep
it bounded, ``--build-answers K`` builds only the first K answers by slug, and
``--build-data DIR`` uses the cache of an existing data folder (e.g. ``.kb``, as a server's
warm-up leaves it) instead of an empty one, skipping the cold build. Prints wall and CPU
time (this process and its computations' processes) per build; nothing here is a test.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from kb.answers.parse import load_answers
from kb.jobs.queue import Job
from kb.build.build import BuildReport, build_site
from engine.catalog import get_experiment
from kb.config import Settings

BASE_URL = "https://kb.example.org/course/kb/"


def build_section(args: argparse.Namespace) -> None:
    settings = Settings.from_env()
    every = sorted(load_answers(settings.answers_dir), key=lambda a: a.slug)
    chosen = every[: args.build_answers] if args.build_answers else every
    with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp:
        answers = Path(tmp) / "answers"
        answers.mkdir()
        for answer in chosen:
            shutil.copy(answer.path, answers / answer.path.name)
        data = Path(args.build_data) if args.build_data else Path(tmp) / "data"
        settings = settings.replace(answers_dir=answers, data_dir=data)
        print(f"static build of {len(chosen)} answers, {args.build_jobs} at a time, "
              f"cache in {settings.cache_dir}")
        builds = [("warm", "site-warm"), ("unchanged", "site-warm")]
        if not args.build_data:
            builds.insert(0, ("cold", "site"))
        rows = []
        for name, out in builds:
            start, cpu = time.perf_counter(), _cpu_seconds()
            report = build_site(settings, Path(tmp) / out, base_url=BASE_URL,
                                jobs=args.build_jobs, progress=lambda line: None)
            rows.append((name, time.perf_counter() - start, _cpu_seconds() - cpu, report))
    print(f"{'cache':<10} {'seconds':>8} {'CPU s':>8} {'runs computed':>14} {'from cache':>11} "
          f"{'files written':>14} {'unchanged':>10} {'slowest answer':>22}")
    for name, seconds, cpu, report in rows:
        print(f"{name:<10} {seconds:8.1f} {cpu:8.1f} {report.computed:14d} {report.cached:11d} "
              f"{len(report.written):14d} {report.unchanged:10d} {_slowest(report):>22}")


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the computations): unlike the
    wall time, it hardly moves with the machine's other work."""
    own, children = (resource.getrusage(who)
                     for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _slowest(report: BuildReport) -> str:
    if not report.answers:
        return "-"
    slowest = max(report.answers, key=lambda a: a.seconds)
    return f"{slowest.slug[:14]} {slowest.seconds:.1f} s"


QUEUE_EXPERIMENT = "bn_scale_invariance"  # about 10 ms of numpy: the queue's cost shows


def queue_section(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-queue-") as tmp:
        _through_redis(args, Path(tmp))
        _embedded(args, Path(tmp))


def _through_redis(args: argparse.Namespace, tmp: Path) -> None:
    from redis import Redis
    from rq.worker import Worker

    from kb.jobs.redis_queue import RedisQueue
    from kb.run.cache import Cache

    port = _free_port()
    redis = subprocess.Popen(["/usr/bin/redis-server", "--port", str(port), "--bind",
                              "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp)],
                             stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    connection = Redis.from_url(url)
    _wait(lambda: _pings(connection))
    print(f"{args.queue_jobs} jobs of {QUEUE_EXPERIMENT} through RQ at {url}")
    print(f"{'':16} {'latency, burst':>25} {'latency, one at a time':>27}")
    print(f"{'workers':>7} {'jobs/s':>8} {'p50':>12} {'p99':>12} {'p50':>13} {'p99':>12}")
    params = get_experiment(QUEUE_EXPERIMENT).resolve({})
    try:
        for workers in (1, 2):
            data = tmp / f"data-{workers}"
            settings = Settings.from_env(data_dir=data).replace(
                queue_url=url, queue_size=10 * args.queue_jobs,
                queue_per_client=10 * args.queue_jobs)
            env = {**os.environ, "KB_QUEUE_URL": url, "KB_DATA": str(data)}
            started = [subprocess.Popen(
                [sys.executable, "-c", "import sys; from kb.cli import main; "
                 "sys.exit(main(['worker']))"], env=env, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL) for _ in range(workers)]
            try:
                _wait(lambda: len(Worker.all(connection=connection)) == workers)
                cache = Cache(settings.cache_dir)
                queue = RedisQueue(settings, cache)
                jobs = _jobs(cache, params, range(args.queue_jobs))
                begin = time.perf_counter()
                for job in jobs:
                    queue.submit(job, "bench")
                _wait(lambda: all(cache.settled(j.experiment, j.params, j.seed) for j in jobs),
                      timeout=600)
                seconds = time.perf_counter() - begin
                # Then one job at a time: the latency of an idle queue.
                alone = _jobs(cache, params, range(10**6, 10**6 + 20))
                for job in alone:
                    queue.submit(job, "bench")
                    _wait(lambda: cache.settled(job.experiment, job.params, job.seed))
                burst, idle = (_waits(connection, batch) for batch in (jobs, alone))
                print(f"{workers:7d} {len(jobs) / seconds:8.1f} "
                      f"{_quantile(burst, 0.5):10.2f} s {_quantile(burst, 0.99):10.2f} s "
                      f"{_quantile(idle, 0.5):10.3f} s {_quantile(idle, 0.99):10.3f} s")
            finally:
                for worker in started:
                    worker.kill()
                    worker.wait()
                connection.flushdb()
    finally:
        redis.kill()
        redis.wait()


def _jobs(cache, params: dict, seeds) -> list[Job]:
    return [Job(cache.key(QUEUE_EXPERIMENT, params, seed), QUEUE_EXPERIMENT, params, seed)
            for seed in seeds]


def _embedded(args: argparse.Namespace, tmp: Path) -> None:
    """The same jobs through the embedded queue of one service process (``kb serve``; each
    gunicorn worker has one), with ``KB_JOB_WORKERS`` 1 and 2."""
    from kb.jobs.local import LocalQueue
    from kb.jobs.queue import run_job
    from kb.run.cache import Cache
    from kb.run.executor import Executor

    print("the same jobs through one process's embedded queue (KB_JOB_WORKERS)")
    print(f"{'workers':>7} {'jobs/s':>8}")
    params = get_experiment(QUEUE_EXPERIMENT).resolve({})
    for workers in (1, 2):
        settings = Settings.from_env(data_dir=tmp / f"embedded-{workers}")
        cache = Cache(settings.cache_dir)
        executor = Executor.for_settings(cache, settings)
        queue = LocalQueue(lambda job: run_job(executor, job), workers,
                           10 * args.queue_jobs, 10 * args.queue_jobs)
        jobs = _jobs(cache, params, range(args.queue_jobs))
        begin = time.perf_counter()
        for job in jobs:
            queue.submit(job, "bench")
        _wait(lambda: all(cache.settled(j.experiment, j.params, j.seed) for j in jobs), 600)
        print(f"{workers:7d} {len(jobs) / (time.perf_counter() - begin):8.1f}")
        queue.close()


def _waits(connection, jobs: list[Job]) -> list[float]:
    """Seconds from submit to start of each job, from RQ's own timestamps."""
    from rq.job import Job as RQJob

    return sorted((q.started_at - q.enqueued_at).total_seconds()
                  for q in RQJob.fetch_many([j.key for j in jobs], connection=connection)
                  if q is not None and q.started_at and q.enqueued_at)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pings(connection) -> bool:
    try:
        return bool(connection.ping())
    except Exception:  # not listening yet
        return False


def _wait(condition: Callable[[], bool], timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise SystemExit("timed out waiting for the queue")
        time.sleep(0.05)


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


SECTIONS: dict[str, Callable[[argparse.Namespace], None]] = {"queue": queue_section,
                                                             "build": build_section}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name in SECTIONS:
        parser.add_argument(f"--{name}", action="store_true", help=f"run the {name} section")
    parser.add_argument("--queue-jobs", type=int, default=60, metavar="N",
                        help="jobs submitted to the queue (default 60)")
    parser.add_argument("--build-jobs", type=int, default=2, metavar="N",
                        help="answers built at a time (default 2)")
    parser.add_argument("--build-answers", type=int, default=0, metavar="K",
                        help="only the first K answers by slug (default: all)")
    parser.add_argument("--build-data", metavar="DIR",
                        help="the cache of this data folder, not an empty one (no cold build)")
    args = parser.parse_args(argv)
    chosen = [name for name in SECTIONS if getattr(args, name)] or list(SECTIONS)
    for name in chosen:
        print(f"== {name} ==")
        SECTIONS[name](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
