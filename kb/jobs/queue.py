"""A job, its state, and what every queue backend does (``JobQueue``)."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable

from kb.run.cache import ComputationFailed
from kb.run.executor import Executor

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"


@dataclass(frozen=True)
class Job:
    """One demonstration to compute: ``key`` is its cache key, so identical jobs share it."""

    key: str
    experiment: str
    params: dict[str, Any]
    seed: int


@dataclass(frozen=True)
class JobState:
    state: str  # QUEUED, RUNNING (DONE and FAILED are read from the cache)
    position: int | None = None  # queued: 1 is next
    elapsed: float | None = None  # running: seconds since it started


class QueueFull(Exception):
    """The queue takes no more jobs now, from anyone (``total``) or from this client."""

    def __init__(self, total: bool, retry_after: int = 10):
        super().__init__("the queue of reruns is full" if total
                         else "you have as many reruns waiting as one reader may")
        self.total = total
        self.retry_after = retry_after


class JobQueue(ABC):
    """Where jobs wait and run. Submitting a job that is waiting or running already adds
    nothing (its state is returned); a job that is neither is unknown (``state`` is None):
    finished (its result, or its failure, is in the cache), never submitted, or lost."""

    @abstractmethod
    def submit(self, job: Job, client: str) -> JobState:
        """Queue ``job`` for ``client`` (an address); QueueFull beyond the bounds."""

    @abstractmethod
    def state(self, job: Job) -> JobState | None:
        """The job's state while it is waiting or running; None otherwise."""

    def close(self) -> None:
        """Stop taking jobs (the running ones end as they would)."""


def run_job(executor: Executor, job: Job) -> None:
    """Compute ``job`` into the cache, once across processes: a failure is recorded there
    (the page tells the reader), so it is not an error of the queue."""
    try:
        executor.compute_entry(job.experiment, job.params, job.seed)
    except ComputationFailed:
        pass


Runner = Callable[[Job], None]
