"""Computations held back until a test lets them go: the state of a rerun not done yet."""
from __future__ import annotations

import threading

import kb.run.executor


class Hold:
    """Once engaged, computations start, then wait until ``release`` is set."""

    def __init__(self, monkeypatch):
        self.monkeypatch = monkeypatch
        self.release, self.started = threading.Event(), threading.Event()

    def engage(self) -> None:
        compute = kb.run.executor.compute_isolated

        def wait_then_compute(*args, **kwargs):
            self.started.set()
            assert self.release.wait(60), "never released"
            return compute(*args, **kwargs)

        self.monkeypatch.setattr(kb.run.executor, "compute_isolated", wait_then_compute)

    def set(self) -> None:
        self.release.set()
