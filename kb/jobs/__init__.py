"""Reruns as jobs: computations for settings other than an answer's own, run off the request.

- ``queue``: what a job is, its state, and the interface every backend offers.
- ``local``: the embedded backend, a pool in the service process (``KB_JOB_WORKERS``).
- ``redis_queue``: jobs on an RQ queue in Redis (``KB_QUEUE_URL``), run by ``kb worker``.
- ``cost``: what a rerun would cost, estimated from its parameters, to refuse it up front.
- ``words``: what a reader is told about a rerun.

A job is one demonstration at one seed and parameter set, named by its cache key, so
identical jobs are one job. Its result lands in the demonstration cache, which is where the
service reads it from: the queue only says what is waiting and running.
"""
from __future__ import annotations

from kb.config import Settings
from kb.jobs.queue import JobQueue, run_job
from kb.run.executor import Executor


def open_queue(settings: Settings, executor: Executor) -> JobQueue:
    """The queue of reruns ``settings`` ask for: RQ on ``KB_QUEUE_URL``, else this process's
    own pool of ``KB_JOB_WORKERS``."""
    if settings.queue_url:
        from kb.jobs.redis_queue import RedisQueue  # imports rq only where it is used

        return RedisQueue(settings, executor.cache)
    from kb.jobs.local import LocalQueue

    return LocalQueue(lambda job: run_job(executor, job), settings.job_workers,
                      settings.queue_size, settings.queue_per_client)
