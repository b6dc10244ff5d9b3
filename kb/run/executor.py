"""Runs an answer's demonstrations: each in a child process under a time limit, through the cache.

numpy code cannot be interrupted from another thread, so every computation runs in a forked
child that is killed when its time is up. "fork" (not the platform default) so experiments
registered at run time, e.g. by tests, exist in the child, on every Python version alike.
A failure or a timeout becomes the demonstration's ``DemoResult.error``, naming the answer's
``file:line``; the answer's other demonstrations still run.
"""
from __future__ import annotations

import multiprocessing
import time
from typing import Any, Callable, Mapping

from engine.catalog import get_experiment
from engine.registry import ParameterError, UnknownExperimentError, check_seed
from kb.run.cache import Cache, check_values, freeze_values
from kb.model import Answer, AnswerRun, Demonstration, DemoResult

_FORK = multiprocessing.get_context("fork")


class DemoFailure(Exception):
    """A computation that raised, died or ran out of time; the message says which."""


def _run_in_child(experiment: str, params: dict[str, Any], seed: int, sender) -> None:
    try:
        started = time.perf_counter()
        values = get_experiment(experiment).run(params, seed)
        seconds = time.perf_counter() - started
        check_values(experiment, values)
        sender.send(("ok", values, seconds))
    except BaseException as exc:  # everything, so the parent learns what happened
        described = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        sender.send(("error", described))


def compute_isolated(
    experiment: str, params: dict[str, Any], seed: int, timeout: float
) -> tuple[dict[str, Any], float]:
    """Run the experiment in a child process: ``(values, seconds)`` or DemoFailure."""
    receiver, sender = _FORK.Pipe(duplex=False)
    child = _FORK.Process(target=_run_in_child, args=(experiment, params, seed, sender))
    child.start()
    sender.close()  # so that the child's exit is an end of file here
    try:
        if not receiver.poll(timeout):
            raise DemoFailure(f"timed out after {timeout:g} s")
        try:
            outcome = receiver.recv()
        except EOFError:
            child.join()
            raise DemoFailure(f"ended without a result (exit code {child.exitcode})") from None
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receiver.close()
    if outcome[0] == "error":
        raise DemoFailure(f"failed: {outcome[1]}")
    return outcome[1], outcome[2]


class _CannotRun(Exception):
    """A demonstration whose own experiment or parameters are broken."""

    def __init__(self, seed: int, params: dict[str, Any], reason: str):
        super().__init__(reason)
        self.seed, self.params, self.reason = seed, params, reason


class Executor:
    """Runs demonstrations; ``fresh`` recomputes and refreshes cached entries."""

    def __init__(self, cache: Cache | None, *, fresh: bool = False, timeout: float = 60.0):
        if not timeout > 0:
            raise ValueError(f"timeout must be positive seconds, got {timeout!r}")
        self.cache = cache
        self.fresh = fresh
        self.timeout = timeout

    def run_demo(
        self, demo: Demonstration, seed: int | None = None, params: dict | None = None
    ) -> DemoResult:
        """Run ``demo`` with ``seed`` (default: its own) and ``params`` overriding its own.

        A ParameterError from ``params`` or ``seed`` propagates (the caller's request is wrong);
        every other problem is reported in the result's ``error``, with the answer's file:line.
        """
        try:
            seed, resolved = self._settings(demo, seed, params)
        except _CannotRun as exc:
            return self._failed(demo, exc.seed, exc.params, f"cannot run: {exc.reason}")

        def compute() -> tuple[dict[str, Any], float]:
            return compute_isolated(demo.experiment, resolved, seed, self.timeout)

        try:
            if self.cache is None:
                values, seconds = compute()
                return DemoResult(
                    demo.name, seed, resolved, freeze_values(values), None, seconds, False
                )
            entry, cached = self.cache.get_or_compute(
                demo.experiment, resolved, seed, compute, fresh=self.fresh
            )
        except DemoFailure as exc:
            return self._failed(demo, seed, resolved, str(exc))
        return DemoResult(
            demo.name, seed, resolved, entry.values, None, entry.seconds, cached, entry.key
        )

    def to_compute(
        self, answer: Answer, seed: int | None = None, overrides: dict[str, dict] | None = None
    ) -> list[str]:
        """The demonstrations of ``answer`` that ``run`` with these settings would compute
        rather than read from the cache (one that cannot run is not among them)."""
        overrides = overrides or {}
        names = []
        for demo in answer.demonstrations:
            try:
                demo_seed, resolved = self._settings(demo, seed, overrides.get(demo.name))
            except _CannotRun:
                continue
            if self.cache is None or self.fresh \
                    or not self.cache.holds(demo.experiment, resolved, demo_seed):
                names.append(demo.name)
        return names

    @staticmethod
    def _settings(demo: Demonstration, seed: int | None, params: dict | None
                  ) -> tuple[int, dict[str, Any]]:
        """(seed, resolved parameters) of ``demo`` run with ``seed`` and ``params``. _CannotRun
        when the demonstration's own experiment or parameters are broken; ParameterError when
        ``seed`` or ``params``, the caller's, are."""
        seed = demo.seed if seed is None else check_seed(seed)
        try:
            experiment = get_experiment(demo.experiment)
            resolved = experiment.resolve(demo.params)
        except (UnknownExperimentError, ParameterError) as exc:
            raise _CannotRun(seed, dict(demo.params), str(exc)) from None
        if params:
            resolved = experiment.resolve({**resolved, **params})
        return seed, resolved

    @staticmethod
    def _failed(demo: Demonstration, seed: int, params: dict[str, Any], message: str
                ) -> DemoResult:
        error = f"{demo.location}: demonstration '{demo.name}' {message}"
        return DemoResult(demo.name, seed, params, None, error, 0.0, False)

    def run(
        self,
        answer: Answer,
        seed: int | None = None,
        overrides: Mapping[str, Mapping] | None = None,
        on_result: Callable[[DemoResult], None] | None = None,
    ) -> AnswerRun:
        """Run every demonstration of ``answer``; ``overrides`` maps a demonstration to params;
        ``on_result`` is told of each result as it comes."""
        overrides = overrides or {}
        unknown = sorted(set(overrides) - {demo.name for demo in answer.demonstrations})
        if unknown:
            raise ParameterError(
                f"answer '{answer.slug}' has no demonstration '{unknown[0]}'"
                f" (it has: {', '.join(d.name for d in answer.demonstrations) or 'none'})"
            )
        results = {}
        for demo in answer.demonstrations:
            results[demo.name] = self.run_demo(demo, seed, overrides.get(demo.name))
            if on_result is not None:
                on_result(results[demo.name])
        return AnswerRun(answer, seed, results)
