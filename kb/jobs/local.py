"""The embedded queue: jobs run in this process's own small pool (``KB_JOB_WORKERS``).

Nothing to install: ``kb serve`` and each gunicorn worker keep one. Each of the pool's threads
takes the oldest waiting job and computes it in a child process of its own, forked for it
under the demonstrations' time, CPU and memory limits (``kb.run.executor``), so at most
``workers`` reruns compute at once per process and a request never waits for one. The same
job asked for by several processes is computed once: the cache's lock makes the others wait
for its result. Jobs are lost with the process (the next view of the page submits them
again); a queue shared by processes and machines is ``kb.jobs.rq``'s.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict

from kb.jobs.queue import QUEUED, RUNNING, Job, JobQueue, JobState, QueueFull, Runner

logger = logging.getLogger(__name__)


class LocalQueue(JobQueue):
    def __init__(self, run: Runner, workers: int, size: int, per_client: int):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"job workers must be an integer >= 1, got {workers!r}")
        self._run = run
        self._workers = workers
        self._size = size
        self._per_client = per_client
        self._lock = threading.Condition()
        self._waiting: OrderedDict[str, tuple[Job, str]] = OrderedDict()
        self._running: dict[str, tuple[float, str]] = {}  # key -> (started, client)
        self._pid: int | None = None  # threads do not survive a fork: started per process
        self._closed = False

    def submit(self, job: Job, client: str) -> JobState:
        with self._lock:
            known = self._state(job.key)
            if known is not None:
                return known
            if len(self._waiting) >= self._size:
                raise QueueFull(total=True)
            mine = sum(1 for _, c in self._waiting.values() if c == client) \
                + sum(1 for _, c in self._running.values() if c == client)
            if mine >= self._per_client:
                raise QueueFull(total=False)
            self._waiting[job.key] = (job, client)
            self._start_pool()
            self._lock.notify()
            return JobState(QUEUED, position=len(self._waiting))

    def state(self, job: Job) -> JobState | None:
        with self._lock:
            return self._state(job.key)

    def _state(self, key: str) -> JobState | None:
        if key in self._running:
            return JobState(RUNNING, elapsed=time.monotonic() - self._running[key][0])
        if key in self._waiting:
            return JobState(QUEUED, position=list(self._waiting).index(key) + 1)
        return None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._waiting.clear()
            self._lock.notify_all()

    def _start_pool(self) -> None:
        if self._pid == os.getpid():
            return
        self._pid = os.getpid()
        for number in range(self._workers):
            threading.Thread(target=self._work, name=f"kb-job-{number}", daemon=True).start()

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._waiting and not self._closed:
                    self._lock.wait()
                if self._closed:
                    return
                key, (job, client) = self._waiting.popitem(last=False)
                self._running[key] = (time.monotonic(), client)
            try:
                self._run(job)
            except Exception:  # the job's page reads what the cache holds; keep working
                logger.exception("rerun %s (seed %s) failed", job.experiment, job.seed)
            finally:
                with self._lock:
                    self._running.pop(key, None)
