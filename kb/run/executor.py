"""Runs an answer's demonstrations: each in a child process under limits, through the cache.

numpy code cannot be interrupted from another thread, so every computation runs in a forked
child that is killed when its time is up. "fork" (not the platform default) so experiments
registered at run time, e.g. by tests, exist in the child, on every Python version alike.
The child cannot outlive or block the process that started it (``_enter_child``): it closes
every descriptor it inherited but its result pipe (a server's listening and client sockets
among them), dies with its parent (Linux's parent-death signal, and a check that the parent
is still the one that forked it), and runs under a CPU-time and a memory limit (``Limits``).
A failure, a timeout or a limit reached becomes the demonstration's ``DemoResult.error``,
naming the answer's ``file:line``; the answer's other demonstrations still run. The cache
records the failure for a while, so that no other thread or process repeats it at once.
"""
from __future__ import annotations

import ctypes
import math
import multiprocessing
import os
import resource
import signal
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

from engine.catalog import get_experiment
from engine.registry import ParameterError, UnknownExperimentError, check_seed
from kb.run.cache import (
    Cache, ComputationFailed, Entry, InProgress, check_values, freeze_values,
)
from kb.model import Answer, AnswerRun, Demonstration, DemoResult

if TYPE_CHECKING:
    from kb.config import Settings

_FORK = multiprocessing.get_context("fork")

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class DemoFailure(ComputationFailed):
    """A computation that raised, died, ran out of time or reached a limit; the message says
    which. The cache records it (``ComputationFailed``)."""


@dataclass(frozen=True)
class Limits:
    """What one computation may use; None: no limit.

    ``memory_mib`` bounds the address space the child may add to what it inherited (the
    server's own, which differs from process to process), so a request cannot make a child
    take the machine's memory; ``cpu_seconds`` bounds its CPU time, a backstop to the time
    limit for a child that nobody waits for any more."""

    cpu_seconds: float | None = None
    memory_mib: int | None = None


def die_with_parent(parent_pid: int) -> None:
    """Make this process die when ``parent_pid``, its parent, does; exit at once if it already
    has. On Linux the kernel sends SIGKILL when the thread that forked this process ends
    (every caller here waits for its child in that thread); elsewhere only the check is made.
    Also used by ``kb check``'s worker processes."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: the check below is all we have
            pass
    if os.getppid() != parent_pid:  # the parent died before the signal was asked for
        os._exit(1)


def _close_inherited_descriptors(keep: int) -> None:
    """Close every descriptor above stderr but ``keep``: a forked child inherits all of its
    parent's, a server's listening socket and its clients' connections among them, and must
    not hold them open (a restarted server could not bind its port while a child lives)."""
    highest = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if highest == resource.RLIM_INFINITY or highest > 1 << 20:
        highest = 1 << 20
    os.closerange(3, keep)
    os.closerange(keep + 1, max(highest, keep + 1))


def _address_space() -> int | None:
    """This process's address space in bytes (Linux), None where it cannot be read."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _apply_limits(limits: Limits) -> None:
    if limits.cpu_seconds is not None:
        soft = max(1, math.ceil(limits.cpu_seconds))
        resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 2))  # SIGXCPU, then SIGKILL
    if limits.memory_mib is not None:
        inherited = _address_space()
        if inherited is not None:
            size = inherited + limits.memory_mib * 2**20
            resource.setrlimit(resource.RLIMIT_AS, (size, size))


def _enter_child(parent_pid: int, sender, limits: Limits) -> None:
    die_with_parent(parent_pid)
    _close_inherited_descriptors(keep=sender.fileno())
    _apply_limits(limits)


def _run_in_child(experiment: str, params: dict[str, Any], seed: int, sender, parent_pid: int,
                  limits: Limits) -> None:
    _enter_child(parent_pid, sender, limits)
    try:
        started = time.perf_counter()
        values = get_experiment(experiment).run(params, seed)
        seconds = time.perf_counter() - started
        check_values(experiment, values)
        sender.send(("ok", values, seconds))
    except MemoryError as exc:
        sender.send(("memory", str(exc) or "MemoryError"))
    except BaseException as exc:  # everything, so the parent learns what happened
        described = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        sender.send(("error", described))


def _describe_exit(exitcode: int | None, limits: Limits) -> str:
    if exitcode is not None and exitcode < 0:
        number = -exitcode
        if number == signal.SIGXCPU and limits.cpu_seconds is not None:
            return f"used up its CPU time limit of {limits.cpu_seconds:g} s"
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        return f"ended without a result (killed by {name})"
    return f"ended without a result (exit code {exitcode})"


def compute_isolated(
    experiment: str, params: dict[str, Any], seed: int, timeout: float,
    limits: Limits = Limits(),
) -> tuple[dict[str, Any], float]:
    """Run the experiment in a child process: ``(values, seconds)`` or DemoFailure."""
    receiver, sender = _FORK.Pipe(duplex=False)
    child = _FORK.Process(target=_run_in_child,
                          args=(experiment, params, seed, sender, os.getpid(), limits))
    child.start()
    sender.close()  # so that the child's exit is an end of file here
    try:
        if not receiver.poll(timeout):
            raise DemoFailure(f"timed out after {timeout:g} s")
        try:
            outcome = receiver.recv()
        except EOFError:
            child.join()
            raise DemoFailure(_describe_exit(child.exitcode, limits)) from None
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receiver.close()
    if outcome[0] == "memory":
        raise DemoFailure(f"stopped at its memory limit of {limits.memory_mib} MiB "
                          f"(MemoryError: {outcome[1]})")
    if outcome[0] == "error":
        raise DemoFailure(f"failed: {outcome[1]}")
    return outcome[1], outcome[2]


class _CannotRun(Exception):
    """A demonstration whose own experiment or parameters are broken."""

    def __init__(self, seed: int, params: dict[str, Any], reason: str):
        super().__init__(reason)
        self.seed, self.params, self.reason = seed, params, reason


@dataclass
class Computing(DemoResult):
    """A demonstration without a result yet: being computed by another thread or process,
    or (for ``compute=False``) not computed at all. Its ``error`` says so."""


COMPUTING = "is being computed; it is shown as soon as it is done"


class Executor:
    """Runs demonstrations; ``fresh`` recomputes and refreshes cached entries; ``timeout``
    (seconds) and ``limits`` bound each computation.

    ``compute=False`` only reads what is cached (a recorded failure included); ``wait=False``
    does not wait for another thread or process computing the same result. Either gives a
    ``Computing`` result where a computation would be needed or waited for: the service
    reads its pages that way, so that no request waits for a computation that is not its own.
    """

    def __init__(self, cache: Cache | None, *, fresh: bool = False, timeout: float = 60.0,
                 limits: Limits = Limits(), compute: bool = True, wait: bool = True):
        if not timeout > 0:
            raise ValueError(f"timeout must be positive seconds, got {timeout!r}")
        self.cache = cache
        self.fresh = fresh
        self.timeout = timeout
        self.limits = limits
        self.compute = compute
        self.wait = wait

    @classmethod
    def for_settings(cls, cache: Cache | None, settings: "Settings") -> "Executor":
        """An executor under the service's limits (``KB_DEMO_TIMEOUT``, ``KB_DEMO_CPU``,
        ``KB_DEMO_MEMORY``): the service's and ``kb worker``'s alike."""
        return cls(cache, timeout=settings.demo_timeout,
                   limits=Limits(cpu_seconds=settings.demo_cpu, memory_mib=settings.demo_memory))

    def but(self, **changes: Any) -> "Executor":
        """A copy of this executor, sharing its cache, with ``changes`` to its options."""
        options = {"fresh": self.fresh, "timeout": self.timeout, "limits": self.limits,
                   "compute": self.compute, "wait": self.wait}
        return Executor(self.cache, **{**options, **changes})

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

        try:
            if self.cache is None:
                if not self.compute:
                    return self._computing(demo, seed, resolved)
                values, seconds = compute_isolated(demo.experiment, resolved, seed,
                                                   self.timeout, self.limits)
                return DemoResult(
                    demo.name, seed, resolved, freeze_values(values), None, seconds, False
                )
            if self.compute:
                entry, cached = self.compute_entry(demo.experiment, resolved, seed)
            else:
                entry, cached = self.cache.read(demo.experiment, resolved, seed), True
                if entry is None:
                    return self._computing(demo, seed, resolved)
        except ComputationFailed as exc:
            return self._failed(demo, seed, resolved, str(exc))
        except InProgress:
            return self._computing(demo, seed, resolved)
        return DemoResult(
            demo.name, seed, resolved, entry.values, None, entry.seconds, cached, entry.key
        )

    def compute_entry(self, experiment: str, params: dict[str, Any], seed: int
                      ) -> tuple[Entry, bool]:
        """The cache's entry for ``experiment`` with resolved ``params`` at ``seed``, computed
        in a child process if missing: ``(entry, read_from_cache)``. ComputationFailed when it
        fails (recorded), InProgress when another computes it and this executor does not wait.
        """
        def run_child() -> tuple[dict[str, Any], float]:
            return compute_isolated(experiment, params, seed, self.timeout, self.limits)

        assert self.cache is not None, "computing an entry needs a cache"
        return self.cache.get_or_compute(experiment, params, seed, run_child, fresh=self.fresh,
                                         wait=self.wait)

    def to_compute(
        self, answer: Answer, seed: int | None = None, overrides: dict[str, dict] | None = None
    ) -> list[str]:
        """The demonstrations of ``answer`` that ``run`` with these settings would compute
        rather than read from the cache (one that cannot run, or whose computation failed
        a moment ago and is recorded as failed, is not among them)."""
        return [demo.name for demo, _, _ in self.pending(answer, seed, overrides)]

    def pending(
        self, answer: Answer, seed: int | None = None, overrides: dict[str, dict] | None = None
    ) -> list[tuple[Demonstration, int, dict[str, Any]]]:
        """``to_compute``'s demonstrations, each with the seed and resolved parameters it
        would be computed with."""
        overrides = overrides or {}
        found = []
        for demo in answer.demonstrations:
            try:
                demo_seed, resolved = self._settings(demo, seed, overrides.get(demo.name))
            except _CannotRun:
                continue
            if self.cache is None or self.fresh \
                    or not self.cache.settled(demo.experiment, resolved, demo_seed):
                found.append((demo, demo_seed, resolved))
        return found

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

    @staticmethod
    def _computing(demo: Demonstration, seed: int, params: dict[str, Any]) -> Computing:
        error = f"{demo.location}: demonstration '{demo.name}' {COMPUTING}"
        return Computing(demo.name, seed, params, None, error, 0.0, False)

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
