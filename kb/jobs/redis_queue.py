"""Jobs on an RQ queue in Redis (``KB_QUEUE_URL``), run by ``kb worker`` on any machine.

Every service process submits to one queue; ``kb worker`` processes, on this machine or
others, take jobs from it and compute them into the demonstration cache, a folder they all
share (see docs/deployment.md for what that folder's filesystem must do). A job's RQ id is
its cache key: a job already waiting or running is not queued again, however many readers
and service processes ask for it, and the cache's per-key lock computes each result once.

A worker that dies mid-job (killed, its machine gone) leaves the job "started" in RQ. A job
started longer ago than its time limit is therefore given to RQ's clean-up of abandoned
jobs, which queues it once more (``Retry(max=1)``) or, the second time, marks it failed;
a failed job without a result is recorded in the cache as a failure with its reason, so
the reader is told. A job that runs past its time limit is ended by the worker (RQ's job
timeout, a backstop to the computation's own limit).
"""
from __future__ import annotations

import time
from datetime import datetime, timezone

from redis import Redis
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job as RQJob, JobStatus

from kb.config import Settings
from kb.jobs.queue import QUEUED, RUNNING, Job, JobQueue, JobState, QueueFull, run_job
from kb.run.cache import Cache, ComputationFailed
from kb.run.executor import Executor

QUEUE_NAME = "kb-reruns"
# Seconds beyond the computation's own time limit that a job may take to read and write the
# shared cache; it may also first wait, a time limit long, for another machine computing the
# same result.
JOB_GRACE = 5
SUBMITTING = "kb:submitting:{}"  # set while one service process enqueues a job
LOST = "worker stopped before the job was done"

_WAITING = {JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED, JobStatus.CREATED}

# The executor a ``kb worker`` process computes with (``serve_jobs`` sets it).
_executor: Executor | None = None


def job_timeout(settings: Settings) -> int:
    return int(2 * settings.demo_timeout) + JOB_GRACE


def connect(settings: Settings) -> Redis:
    return Redis.from_url(settings.queue_url)


def compute(experiment: str, params: dict, seed: int, key: str) -> None:
    """The function an RQ worker runs for a job (named by RQ as ``kb.jobs.redis_queue.compute``)."""
    assert _executor is not None, "kb worker sets the executor before it takes jobs"
    run_job(_executor, Job(key, experiment, params, seed))


class RedisQueue(JobQueue):
    def __init__(self, settings: Settings, cache: Cache):
        self.connection = connect(settings)
        self.queue = Queue(QUEUE_NAME, connection=self.connection)
        self.cache = cache
        self.size = settings.queue_size
        self.per_client = settings.queue_per_client
        self.timeout = job_timeout(settings)

    def submit(self, job: Job, client: str) -> JobState:
        known = self.state(job)
        if known is not None:
            return known
        if self.queue.count >= self.size:
            raise QueueFull(total=True)
        if self._jobs_of(client) >= self.per_client:
            raise QueueFull(total=False)
        # Two service processes submitting the same job at once: one enqueues it.
        if not self.connection.set(SUBMITTING.format(job.key), client, nx=True, ex=5):
            return self.state(job) or JobState(QUEUED, position=1)
        queued = self.queue.enqueue(
            compute, job.experiment, job.params, job.seed, job.key, job_id=job.key,
            job_timeout=self.timeout, retry=Retry(max=1), meta={"client": client},
            result_ttl=60, failure_ttl=3600, description=f"{job.experiment} seed {job.seed}")
        return JobState(QUEUED, position=(queued.get_position() or 0) + 1)

    def state(self, job: Job) -> JobState | None:
        try:
            queued = RQJob.fetch(job.key, connection=self.connection)
        except NoSuchJobError:
            return None
        status = queued.get_status()
        if status in _WAITING:
            return JobState(QUEUED, position=(queued.get_position() or 0) + 1)
        if status == JobStatus.STARTED:
            elapsed = _seconds_since(queued.started_at)
            if elapsed <= self.timeout:
                return JobState(RUNNING, elapsed=elapsed)
            # Past its time limit: its worker died. RQ retries it or marks it failed.
            self.queue.started_job_registry.cleanup(timestamp=time.time() + 60)
            if queued.get_status() != JobStatus.STARTED:
                return self.state(job)
            return JobState(RUNNING, elapsed=elapsed)
        if status == JobStatus.FAILED:
            latest = queued.latest_result()
            trace = (latest.exc_string or "").strip() if latest is not None else ""
            self._record(job, LOST if "Abandoned" in trace or not trace
                         else f"failed: {trace.splitlines()[-1]}")
        return None

    def _record(self, job: Job, message: str) -> None:
        """A job that ended without a result: its failure, in the cache, for the reader."""
        def fail() -> tuple[dict, float]:
            raise ComputationFailed(message)

        try:
            self.cache.get_or_compute(job.experiment, job.params, job.seed, fail)
        except ComputationFailed:
            pass

    def _jobs_of(self, client: str) -> int:
        """How many jobs ``client`` has waiting or running."""
        ids = self.queue.get_job_ids() + self.queue.started_job_registry.get_job_ids()
        jobs = RQJob.fetch_many(ids, connection=self.connection)
        return sum(1 for queued in jobs if queued is not None
                   and queued.meta.get("client") == client)


def _seconds_since(moment: datetime | None) -> float:
    if moment is None:
        return 0.0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return max(0.0, (datetime.now(timezone.utc) - moment).total_seconds())


def serve_jobs(settings: Settings, executor: Executor, name: str | None = None,
               burst: bool = False) -> None:
    """Take jobs from the queue and compute them, until stopped (``burst``: until empty).

    RQ's SimpleWorker computes each job in this process (which forks the computation's own
    limited child), so a worker killed with SIGKILL takes its computation with it, and the
    job is retried or failed as above rather than finished by an orphan."""
    from rq.worker import SimpleWorker

    global _executor
    _executor = executor
    worker = SimpleWorker([Queue(QUEUE_NAME, connection=connect(settings))],
                          connection=connect(settings), name=name,
                          maintenance_interval=max(30, job_timeout(settings)))
    worker.work(burst=burst, with_scheduler=False)
