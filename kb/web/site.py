"""The service's long-lived, per-process state, kept fresh cheaply.

- ``AnswerStore``: the answer files, parsed once and reparsed when their mtime changes.
- ``KeptIndex``: the search index, built when missing and rebuilt when the answers change.
- ``MemoCache``: a bounded in-memory cache that computes each key once even under threads.
- ``View``: the seed and parameter overrides a page is shown with (from its query string).
- ``Sampler``: computes answers' own settings and samples of seeds in the background.
- ``Site``: one of each, plus the executor and the queue of reruns (``kb.jobs``), for one app;
  ``Outcome``: an answer run for a view; ``Rerun``: the state of a view's rerun.

No request waits for a computation: a view at an answer's own settings only reads what is
computed (what is not shows as computing, and the ``Sampler`` computes it); a view at other
settings (a rerun) is a job on the queue: its request waits ``KB_RERUN_WAIT`` seconds at most,
then shows the answer's own results with the rerun's state until the job is done. A rerun
estimated to take longer than the time limit is refused up front; one that fails shows the
answer's own results with a notice about those settings. Storage trouble (a read-only or full data folder)
degrades what is served, never fails it: the search keeps its last index, results that cannot
be stored are kept in memory.

Nothing here knows about Flask: ``kb.web.app`` holds one ``Site`` per app.
"""
from __future__ import annotations

import dataclasses
import fcntl
import gzip
import logging
import math
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Hashable, Mapping

from cachetools import TLRUCache, cached
from filelock import FileLock

from engine.catalog import get_experiment
from engine.registry import ParameterError, UnknownExperimentError, check_seed
from kb.jobs import open_queue
from kb.jobs.cost import estimate, suggestion
from kb.jobs.queue import FAILED, QUEUED, RUNNING, DONE, Job, JobState, QueueFull
from kb.jobs.words import (
    failed_notice, failure_reason, full_notice, refused_notice, settings_text,
)
from kb.run.cache import Cache, ComputationFailed
from kb.config import ConfigError, Settings
from kb.run.evaluate import Evaluation, evaluate
from kb.run.executor import Computing, Executor
from kb.run.figures import FORMATS, FigureError, figure_bytes, figure_key
from kb.search.refresh import refresh_index
from kb.model import Answer, AnswerRun, ClaimOutcome, DemoResult
from kb.answers.parse import load_answers
from kb.search.index import SearchIndex, SearchResults

logger = logging.getLogger(__name__)

# A failed or timed-out demonstration is tried again after this many seconds, not on every
# view: one that runs into its time limit would otherwise cost that much on each request.
RETRY_FAILED_AFTER = 60.0
# A page whose findings are still being measured is made again after this many seconds.
PENDING_RECHECK = 5.0
# A page with a demonstration being computed is made again after this many seconds.
COMPUTING_RECHECK = 2.0
# A rerun estimated to take more than this fraction of the time limit is refused: estimates
# are rough, and a machine busier than when the answer's own settings were timed is slower.
REFUSE_ABOVE = 0.8
# How often a request waiting for its rerun looks at the cache.
RERUN_POLL = 0.05
# Rerun states beyond the queue's: not started (estimated too long) and no room in the queue.
REFUSED, BUSY = "refused", "busy"


@dataclass(frozen=True)
class Answers:
    """The answers folder as loaded once: answers by slug and old slugs (aliases).

    ``generation`` counts loads; a page depends on every answer (it shows related answers'
    titles), so whatever is cached from a page is keyed by the generation it was made from.
    """

    generation: int = 0
    by_slug: Mapping[str, Answer] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)

    def get(self, slug: str) -> Answer | None:
        return self.by_slug.get(slug)

    def alias_target(self, slug: str) -> str | None:
        """The current slug that ``slug`` was renamed to, if it is an alias."""
        return self.aliases.get(slug)

    def all(self) -> list[Answer]:
        return sorted(self.by_slug.values(), key=lambda a: a.slug)


class AnswerStore:
    """The answers folder, reparsed when its files change.

    The folder is looked at no more than once per ``check_interval`` seconds, so a busy page
    costs one clock read, not a directory scan. When any file changed (by mtime, or added or
    removed) the folder is loaded again as a whole: aliases and related answers are checked
    across answers. Each load is a new ``Answers``, swapped in whole, so a request that holds
    one sees a consistent folder.
    """

    def __init__(self, answers_dir: Path, check_interval: float = 1.0):
        self.answers_dir = Path(answers_dir)
        self.check_interval = check_interval
        self._lock = threading.Lock()
        self._checked_at = float("-inf")
        self._mtimes: dict[Path, int] | None = None
        self._answers = Answers()

    def current(self) -> Answers:
        self.refresh()
        return self._answers

    def refresh(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._checked_at < self.check_interval:
            return
        with self._lock:
            mtimes = self._scan()
            if mtimes != self._mtimes:
                self._load(mtimes)
            self._checked_at = time.monotonic()

    def _scan(self) -> dict[Path, int]:
        mtimes = {}
        for path in sorted(self.answers_dir.glob("*.md")):
            try:
                mtimes[path] = path.stat().st_mtime_ns
            except FileNotFoundError:  # removed while we looked
                continue
        return mtimes

    def _load(self, mtimes: dict[Path, int]) -> None:
        answers = load_answers(self.answers_dir, display_root=self.answers_dir.parent)
        by_slug = {answer.slug: answer for answer in answers}
        aliases = {
            alias: answer.slug
            for answer in answers
            for alias in answer.aliases
            if alias not in by_slug  # a live slug always wins over someone's old name
        }
        self._mtimes = mtimes
        self._answers = Answers(self._answers.generation + 1, by_slug, aliases)
        logger.info("loaded %d answers from %s", len(answers), self.answers_dir)


class MemoCache:
    """At most ``size`` values, least recently used dropped first; ``make`` runs once per key.

    cachetools does the work. A ``TLRUCache`` holds each value for as long as its ``keep_for``
    says (one to keep 0 seconds is not stored) and drops the least recently used when full.
    The ``cached`` wrapper's condition makes concurrent requests for a key that is being made
    wait for it instead of making it again: a popular link to a new seed must not start the
    same computation in every thread. An exception is not kept: the next request tries again.
    """

    def __init__(self, size: int, timer: Callable[[], float] = time.monotonic):
        # Entries are (value, seconds to keep it).
        self._values = TLRUCache(size, ttu=lambda key, entry, now: now + entry[1], timer=timer)
        self._made = cached(self._values, key=lambda key, make, keep_for: key,
                            condition=threading.Condition())(_make_entry)

    def get_or_make(self, key: Hashable, make: Callable[[], Any],
                    keep_for: Callable[[Any], float] = lambda value: math.inf) -> Any:
        """The value for ``key``; a value made now is kept ``keep_for(value)`` seconds."""
        return self._made(key, make, keep_for)[0]

    def peek(self, key: Hashable) -> Any | None:
        """The value kept for ``key``, or None; makes nothing, waits for nothing."""
        with self._made.cache_lock:
            entry = self._values.get(key)
        return None if entry is None else entry[0]

    def put(self, key: Hashable, value: Any,
            keep_for: Callable[[Any], float] = lambda value: math.inf) -> None:
        """Keep ``value`` for ``key`` (made elsewhere) ``keep_for(value)`` seconds."""
        with self._made.cache_lock:
            self._values[key] = (value, keep_for(value))

    def clear(self) -> None:
        self._made.cache_clear()


def _make_entry(key: Hashable, make: Callable[[], Any],
                keep_for: Callable[[Any], float]) -> tuple[Any, float]:
    value = make()
    return value, keep_for(value)


def _query_text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


@dataclass(frozen=True)
class View:
    """How an answer is shown: one seed for every demonstration (None: each its own) and
    parameter overrides ``((demo, ((param, value), ...)), ...)``, sorted, without values equal
    to the answer's own, so that equivalent URLs share one cache entry."""

    seed: int | None = None
    overrides: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()

    def overrides_dict(self) -> dict[str, dict[str, Any]]:
        return {demo: dict(params) for demo, params in self.overrides}

    def query_items(self) -> list[tuple[str, str]]:
        """The query string that shows this view: ``seed=3&<demo>.<param>=value``."""
        items = [] if self.seed is None else [("seed", str(self.seed))]
        for demo, params in self.overrides:
            items.extend((f"{demo}.{name}", _query_text(value)) for name, value in params)
        return items


def parse_view(answer: Answer, args: Mapping[str, str]) -> View:
    """The view asked for by a query string; ParameterError names the bad parameter and range.

    Keys without a dot other than ``seed`` (e.g. tracking parameters added by forums) are
    ignored; an empty value means "not given", as a blank form field sends it.
    """
    seed = None
    text = (args.get("seed") or "").strip()
    if text:
        seed = check_seed(int(text) if text.isascii() and text.isdigit() else text)
        if all(demo.seed == seed for demo in answer.demonstrations):
            seed = None  # the answer's own seeds: the same view
    requested: dict[str, dict[str, str]] = {}
    for key, value in args.items():
        if "." in key and value.strip():
            demo, param = key.split(".", 1)
            requested.setdefault(demo, {})[param] = value
    overrides = []
    for demo_name in sorted(requested):
        try:
            demo = answer.demonstration(demo_name)
        except KeyError:
            known = ", ".join(d.name for d in answer.demonstrations) or "none"
            raise ParameterError(
                f"answer '{answer.slug}' has no demonstration '{demo_name}' (it has: {known})"
            ) from None
        try:
            experiment = get_experiment(demo.experiment)
        except UnknownExperimentError as exc:
            raise ParameterError(f"demonstration '{demo_name}' cannot run: {exc}") from None
        own = experiment.resolve(demo.params)
        try:
            asked = experiment.resolve(requested[demo_name])
        except ParameterError as exc:  # the field is named as the query names it
            raise ParameterError(f"demonstration '{demo_name}': {exc}",
                                 param=exc.param and f"{demo_name}.{exc.param}",
                                 given=exc.given) from None
        changed = tuple(
            (name, asked[name]) for name in sorted(requested[demo_name]) if asked[name] != own[name]
        )
        if changed:
            overrides.append((demo_name, changed))
    return View(seed, tuple(overrides))


@dataclass(frozen=True)
class Rerun:
    """The state of a view at other settings than the answer's own: ``done`` (its results are
    shown), ``queued`` (``position``: 1 is next), ``running`` (for ``elapsed`` seconds),
    ``failed``, ``refused`` (estimated too long) or ``busy`` (the queue is full; try again
    after ``retry_after`` seconds). ``notice`` is for the reader."""

    state: str
    settings: str  # "seed 7, steps = 2000", as the reader set them
    position: int | None = None
    elapsed: float | None = None
    notice: str | None = None
    retry_after: int | None = None

    @property
    def pending(self) -> bool:
        return self.state in (QUEUED, RUNNING)

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "settings": self.settings, "position": self.position,
                "elapsed": None if self.elapsed is None else round(self.elapsed, 1),
                "notice": self.notice, "retry_after": self.retry_after}


@dataclass
class Outcome:
    """An answer shown with one view: its evaluation (one run: the view's seed).

    For a view at other settings, ``rerun`` says how that rerun stands. While it is not done
    (or when it failed, or was refused) the outcome shows the answer's own results: ``view``
    is then the answer's own and ``asked`` the view asked for. When it is done, ``own`` is the
    answer's own outcome, which its results are compared with."""

    view: View
    evaluation: Evaluation
    asked: View | None = None
    rerun: Rerun | None = None
    own: "Outcome | None" = None

    @property
    def shown_for(self) -> View:
        """The view the reader asked for (its URL), whatever results are shown."""
        return self.asked if self.asked is not None else self.view

    @property
    def answer(self) -> Answer:
        return self.evaluation.answer

    @property
    def run(self) -> AnswerRun:
        return self.evaluation.runs[0]

    @property
    def claims(self) -> list[ClaimOutcome]:
        return self.evaluation.claims

    @property
    def values(self) -> dict[str, str | None]:
        """Inline value source -> formatted text (None: unavailable)."""
        return self.evaluation.shown_values()

    @property
    def computing(self) -> list[str]:
        """The demonstrations without a result yet: being computed (they are not errors)."""
        return [name for name, result in self.run.results.items()
                if isinstance(result, Computing)]

    @property
    def errors(self) -> list[str]:
        """Every problem, each naming its file:line (a demonstration being computed is none)."""
        computing = {f"demonstration {name}" for name in self.computing}
        return [problem.message for problem in self.evaluation.problems
                if not (problem.kind == "demonstration" and problem.name in computing)]

    @property
    def complete(self) -> bool:
        """Whether every demonstration produced values."""
        return self.evaluation.complete

    def keep_for(self) -> float:
        """Seconds to keep this in memory: for ever, until what is being computed may be
        done, until its findings' sample may be computed, or until a failure is worth trying
        again; not at all while a rerun waits or runs."""
        if self.rerun is not None and (self.rerun.pending or self.rerun.state == BUSY):
            return 0
        if self.computing:
            return COMPUTING_RECHECK
        if self.evaluation.pending:
            return PENDING_RECHECK
        return math.inf if self.complete else RETRY_FAILED_AFTER


class NotYet(Exception):
    """Something that needs a demonstration still being computed (a figure): the request can
    be repeated shortly."""

    def __init__(self, answer: Answer, demo: str):
        super().__init__(f"Demonstration '{demo}' of '{answer.slug}' is still being computed; "
                         "try again in a few seconds.")
        self.answer = answer


class SearchUnavailable(Exception):
    """No search index to read: none was built, and it cannot be built now."""


class KeptIndex:
    """The search index, built when missing and rebuilt when the answer files change.

    Freshness (a fingerprint of the files) is checked at most once per ``check_interval``
    seconds. Several processes may share the index folder: ``SearchIndex`` serializes their
    builds and swaps each new version in atomically, so readers always see a whole index; a
    lock file (``lock_path``) and a second look make the processes starting together build
    it once. A build that fails (a read-only or full data folder) leaves the current index
    in service: it is logged once and tried again after the interval.
    """

    def __init__(self, index: SearchIndex, answers_dir: Path, check_interval: float = 5.0,
                 lock_path: Path | None = None):
        self.index = index
        self.answers_dir = answers_dir
        self.check_interval = check_interval
        self.lock_path = lock_path
        self._lock = threading.Lock()
        self._checked_at = float("-inf")
        self.failure: str | None = None  # why the last build failed, until one succeeds

    def ensure_current(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._checked_at < self.check_interval:
            return
        with self._lock:  # one check at a time; the others wait for its result
            if force or time.monotonic() - self._checked_at >= self.check_interval:
                try:
                    build = self._refresh()
                except Exception as exc:  # storage trouble, or an index that cannot be built
                    self._failed(exc)
                else:
                    if self.failure is not None:
                        logger.info("search index can be built again")
                    self.failure = None
                    if build is not None:
                        logger.info("search index built: %d answers in %.2f s",
                                    len(build.titles), build.seconds)
                self._checked_at = time.monotonic()

    def _refresh(self):
        if self.lock_path is None:
            return refresh_index(self.index, self.answers_dir)
        try:
            self.lock_path.parent.mkdir(parents=True, exist_ok=True)
            lock = FileLock(self.lock_path)
            lock.acquire()
        except OSError:  # no lock file in a read-only folder: build (or fail) without it
            return refresh_index(self.index, self.answers_dir)
        try:  # another process may have built it while we waited: refresh_index looks again
            return refresh_index(self.index, self.answers_dir)
        finally:
            lock.release()

    def _failed(self, exc: Exception) -> None:
        reason = f"{type(exc).__name__}: {exc}"
        if self.failure is None:
            kept = "keeping the current index" if self.index.exists() else "there is no index"
            logger.warning("search index could not be built (%s); %s, trying again every "
                           "%g s", reason, kept, self.check_interval)
        self.failure = reason

    def search(self, query: str, limit: int) -> SearchResults:
        self.ensure_current()
        try:
            return self.index.search(query, limit)
        except FileNotFoundError as exc:
            raise SearchUnavailable(self.failure or str(exc)) from None

    def clean_leftovers(self, older_than: float = 600.0) -> int:
        """Remove what builds that were killed left behind: version folders without their
        fingerprint (the last file a build writes) and link files never swapped in, older
        than ``older_than`` seconds. Only while no build runs (their lock is free); returns
        how many were removed."""
        index_dir = self.index.index_dir
        lock_path = index_dir.with_name(index_dir.name + ".lock")
        versions = index_dir.with_name(index_dir.name + ".versions")
        try:
            lock_file = open(lock_path, "a")
        except OSError:
            return 0
        removed = 0
        with lock_file:
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return 0  # a build is running
            try:
                now = time.time()
                candidates = [p for p in versions.glob("*")
                              if not (p / "answers.fingerprint").exists()]
                candidates += list(index_dir.parent.glob(f".{index_dir.name}.*.link"))
                for path in candidates:
                    try:
                        if now - path.lstat().st_mtime < older_than:
                            continue
                        if path.is_dir() and not path.is_symlink():
                            shutil.rmtree(path)
                        else:
                            path.unlink()
                        removed += 1
                    except OSError:
                        continue
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)
        if removed:
            logger.info("removed %d leftovers of killed index builds", removed)
        return removed


class Sampler:
    """Computes answers in one background thread: their own settings (and figures) when a
    page found them missing, and their samples of seeds, which findings are measured on.
    Own settings go first, so a page waits for no sample (nor for a broken answer's); a page
    shows what is missing as computing, or pending, meanwhile."""

    def __init__(self, executor: Executor, cache: Cache | None = None):
        self.executor = executor
        self.cache = cache
        self._lock = threading.Lock()
        self._own: dict[str, Answer] = {}  # slug -> answer, in the order asked
        self._samples: dict[str, Answer] = {}
        self._thread: threading.Thread | None = None
        self.idle = threading.Event()
        self.idle.set()

    def request(self, answer: Answer, own: bool = False) -> None:
        """Compute ``answer``'s sample of seeds, or (``own``) its own settings and figures."""
        with self._lock:
            (self._own if own else self._samples).setdefault(answer.slug, answer)
            self.idle.clear()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="kb-sampler",
                                                daemon=True)
                self._thread.start()

    def compute(self, answer: Answer) -> None:
        """Compute ``answer``'s sample now (in this thread); the cache keeps it."""
        for seed in answer.seeds:
            self.executor.run(answer, seed)

    def compute_own(self, answer: Answer, figures: bool = True) -> None:
        """Compute ``answer``'s own settings and (``figures``) their figures now, in this
        thread."""
        run = self.executor.run(answer)
        for demo in answer.demonstrations if figures else ():
            result = run.results[demo.name]
            for spec in demo.figures:
                for fmt in FORMATS:
                    try:
                        figure_bytes(self.cache, demo, result, spec, fmt)
                    except FigureError as exc:  # shown on the page; nothing to compute
                        logger.warning("%s", exc)

    def _work(self) -> None:
        while True:
            with self._lock:
                queue = self._own or self._samples
                if not queue:
                    self._thread = None
                    self.idle.set()
                    return
                slug = next(iter(queue))
                answer = queue[slug]
            try:
                (self.compute_own if queue is self._own else self.compute)(answer)
            except Exception:  # a page shows the failure when it evaluates the answer
                logger.exception("computing %s in the background failed", slug)
            finally:
                with self._lock:
                    queue.pop(slug, None)


def _works(result: DemoResult) -> bool:
    """Whether a demonstration at its own settings works (or is still computing): a rerun's
    failure is then the failure of the rerun's settings."""
    return result.error is None or isinstance(result, Computing)


def _standing(settings: str, states: list[JobState]) -> Rerun:
    """How a rerun stands from its jobs' states: running if any runs, else queued."""
    running = [state.elapsed or 0.0 for state in states if state.state == RUNNING]
    if running:
        return Rerun(RUNNING, settings, elapsed=max(running))
    return Rerun(QUEUED, settings,
                 position=min((state.position or 1 for state in states), default=1))


def check_data_dir(data_dir: Path) -> bool:
    """Whether the data folder can be written (made if missing). ConfigError, one line, when it
    cannot be used at all; a read-only (or full) folder is served as it is, with a warning."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(f"the data folder {data_dir} (KB_DATA) is not a folder") from None
    except OSError as exc:
        raise ConfigError(f"the data folder {data_dir} (KB_DATA) cannot be made: "
                          f"{exc.strerror or exc}") from None
    try:
        os.listdir(data_dir)
    except OSError as exc:
        raise ConfigError(f"the data folder {data_dir} (KB_DATA) cannot be read: "
                          f"{exc.strerror or exc}") from None
    try:
        with tempfile.TemporaryFile(dir=data_dir):
            pass
    except OSError as exc:
        logger.warning("the data folder %s cannot be written (%s): serving the index and "
                       "results it holds; new results are kept in memory only",
                       data_dir, exc.strerror or exc)
        return False
    return True


class Site:
    """Everything one app serves from: answers, search, the executor and in-memory caches."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.writable = check_data_dir(settings.data_dir)
        self.answers = AnswerStore(settings.answers_dir, settings.reload_interval)
        self.index = KeptIndex(SearchIndex(settings.index_dir), settings.answers_dir,
                               settings.index_interval,
                               lock_path=settings.data_dir / "index-refresh.lock")
        self.cache = Cache(settings.cache_dir, failure_ttl=settings.failure_ttl,
                           max_bytes=settings.cache_size * 2**20, protected=self.protected_keys,
                           kept=max(settings.memo_size, 16))
        self.executor = Executor.for_settings(self.cache, settings)
        self.reader = self.executor.but(compute=False)  # pages: what is computed, no more
        self.jobs = open_queue(settings, self.executor)  # reruns
        self.outcomes = MemoCache(settings.memo_size)  # (slug, view, generation) -> Outcome
        self.pages = MemoCache(settings.memo_size)  # rendered pages, keyed by kb.web
        self.figures = MemoCache(settings.memo_size)  # (slug, figure, format, view, generation)
        self.samples = MemoCache(settings.memo_size)  # (slug, generation) -> sample runs
        self.sampler = Sampler(self.executor, self.cache)

    def search(self, query: str, limit: int) -> SearchResults:
        return self.index.search(query, limit)

    def outcome(self, answer: Answer, view: View, generation: int, client: str = "local"
                ) -> Outcome:
        """The answer run with ``view``: demonstrations from the cache, claims evaluated.
        ``generation``: that of the ``Answers`` the answer came from (part of the key);
        ``client``: the address a rerun is queued for (its share of the queue).

        Nothing is computed here. At the answer's own settings what is missing shows as
        computing, and the sampler computes it. Another view's missing results are jobs on
        the queue: until they are done (``KB_RERUN_WAIT`` seconds at most are waited here),
        or when they failed or are refused, the answer's own results are shown with the
        rerun's state.
        """
        own = self.outcomes.get_or_make((answer.slug, View(), generation),
                                        lambda: self._read(answer, View(), generation),
                                        keep_for=Outcome.keep_for)
        if view == View():
            return own
        settings = settings_text(view.seed, view.overrides_dict())
        key = (answer.slug, view, generation)
        kept = self.outcomes.peek(key)
        if kept is None:
            rerun = self._rerun(answer, view, settings, client)
            if rerun is not None:
                return dataclasses.replace(own, asked=view, rerun=rerun)
            kept = self.outcomes.get_or_make(
                key, lambda: self._evaluate(answer, view, generation, self.reader),
                keep_for=Outcome.keep_for)
        reasons = [failure_reason(result.error) for name, result in kept.run.results.items()
                   if result.error and not isinstance(result, Computing)
                   and _works(own.run.results[name])]
        if reasons:
            return dataclasses.replace(own, asked=view, rerun=Rerun(
                FAILED, settings, notice=failed_notice(settings, reasons)))
        return dataclasses.replace(kept, own=own, rerun=Rerun(DONE, settings))

    def _read(self, answer: Answer, view: View, generation: int) -> Outcome:
        outcome = self._evaluate(answer, view, generation, self.reader)
        if outcome.computing and view == View():
            self.sampler.request(answer, own=True)
        return outcome

    def _rerun(self, answer: Answer, view: View, settings: str, client: str) -> Rerun | None:
        """None when every result of ``view`` is in the cache (or recorded as failed), after
        waiting ``KB_RERUN_WAIT`` seconds at most for the jobs that compute them; else how
        the rerun stands."""
        jobs = [Job(self.cache.key(demo.experiment, params, seed), demo.experiment, params, seed)
                for demo, seed, params in
                self.executor.pending(answer, view.seed, view.overrides_dict())]
        if not jobs:
            return None
        refused = self._refusal(answer, view, settings)
        if refused is not None:
            return Rerun(REFUSED, settings, notice=refused)
        deadline = time.monotonic() + self.settings.rerun_wait
        while True:
            states = []
            for job in jobs:
                # A job already waiting or running is not queued again; one that is neither
                # and has no result (nor a recorded failure) was lost: it is queued again.
                state = self.jobs.state(job)
                if state is None and not self._settled(job):
                    try:
                        state = self.jobs.submit(job, client)
                    except QueueFull as exc:
                        return Rerun(BUSY, settings, retry_after=exc.retry_after,
                                     notice=full_notice(settings, exc.total, exc.retry_after))
                states.append(state)
            jobs = [job for job in jobs if not self._settled(job)]
            if not jobs:
                return None
            if time.monotonic() >= deadline:
                return _standing(settings, [state for state in states if state is not None])
            time.sleep(RERUN_POLL)

    def _settled(self, job: Job) -> bool:
        return self.cache.settled(job.experiment, job.params, job.seed)

    def _refusal(self, answer: Answer, view: View, settings: str) -> str | None:
        """Why ``view`` is not computed at all: a demonstration estimated to take longer than
        the time limit, from how long it took with its own settings; None: it may run."""
        budget = REFUSE_ABOVE * self.settings.demo_timeout
        # The own settings were timed on this machine, perhaps when it was idle; a machine
        # with more runnable processes than cores now is that much slower.
        slower = max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))
        for demo, seed, params in self.executor.pending(answer, view.seed,
                                                        view.overrides_dict()):
            own_params = get_experiment(demo.experiment).resolve(demo.params)
            try:
                own = self.cache.read(demo.experiment, own_params, demo.seed)
            except ComputationFailed:
                own = None
            if own is None:  # not timed yet: nothing to estimate from
                continue
            guess = estimate(own_params, own.seconds * slower, params)
            if guess.seconds > budget:
                return refused_notice(settings, demo.name, guess, own.seconds * slower,
                                      self.settings.demo_timeout,
                                      suggestion(guess, params, own_params, budget))
        return None

    def _evaluate(self, answer: Answer, view: View, generation: int, executor: Executor
                  ) -> Outcome:
        # Findings are measured over the answer's sample at its own settings, whatever the
        # view: a rerun changes the figures, values and checks of its one run.
        sample = self.sample(answer, generation)
        return Outcome(view, evaluate(answer, executor, [view.seed], view.overrides_dict(),
                                      sample=sample))

    def sample(self, answer: Answer, generation: int) -> list[AnswerRun] | None:
        """The runs of ``answer``'s sample of seeds at its own settings, which its findings
        are measured on: read from the cache when every one is there; else an empty list
        (pending) while the sampler computes them in the background. None: no sample."""
        if not answer.seeds:
            return None

        def read() -> list[AnswerRun]:
            if not any(self.executor.to_compute(answer, seed) for seed in answer.seeds):
                runs = [self.reader.run(answer, seed) for seed in answer.seeds]
                if not any(isinstance(r, Computing) for run in runs
                           for r in run.results.values()):
                    return runs
            self.sampler.request(answer)
            return []

        return self.samples.get_or_make((answer.slug, generation), read,
                                        keep_for=lambda runs: math.inf if runs else 0)

    def figure(self, answer: Answer, name: str, fmt: str, view: View, generation: int,
               gzipped: bool = False) -> bytes:
        """The figure ``name`` drawn for ``view`` (``gzipped``: compressed, once); LookupError
        if the answer has no such figure, NotYet while its demonstration is computing,
        FigureError (naming file:line) if it cannot be drawn."""
        if gzipped:
            return self.figures.get_or_make(
                (answer.slug, name, fmt, view, generation, "gzip"),
                lambda: gzip.compress(self.figure(answer, name, fmt, view, generation), mtime=0))
        found = [(d, f) for d in answer.demonstrations for f in d.figures if f.name == name]
        if not found:
            raise LookupError(f"answer '{answer.slug}' has no figure '{name}'")
        demo, spec = found[0]
        key = (answer.slug, name, fmt, view, generation)
        kept = self.figures.peek(key)
        if kept is not None:
            return kept
        outcome = self.outcome(answer, view, generation)
        result = outcome.run.results[demo.name]
        if outcome.asked is not None or isinstance(result, Computing):  # a rerun not done
            raise NotYet(answer, demo.name)
        return self.figures.get_or_make(
            key, lambda: figure_bytes(self.cache, demo, result, spec, fmt))

    def protected_keys(self) -> set[str]:
        """The cache keys of every answer's own settings: its demonstrations at their own
        seeds (with their figures) and at its sample's seeds. The cache never evicts them."""
        keys: set[str] = set()
        for answer in self.answers.current().all():
            for demo in answer.demonstrations:
                try:
                    params = get_experiment(demo.experiment).resolve(demo.params)
                except (UnknownExperimentError, ParameterError):
                    continue
                own = self.cache.key(demo.experiment, params, demo.seed)
                keys.add(own)
                keys.update(self.cache.key(demo.experiment, params, s) for s in answer.seeds)
                keys.update(figure_key(own, spec.drawing, fmt)
                            for spec in demo.figures for fmt in FORMATS)
        return keys

    def housekeeping(self) -> None:
        """Remove what killed writers and builds left behind, and keep the cache under its
        size bound; run at start."""
        if not self.writable:
            return
        self.index.clean_leftovers()
        pruned = self.cache.prune()
        if pruned is not None and pruned.leftovers:
            logger.info("removed %d leftovers of killed cache writes", pruned.leftovers)

    def warm(self, stop: threading.Event | None = None, samples: bool = True,
             figures: bool = True) -> int:
        """Compute every answer's demonstrations and (``figures``) figures at their own
        settings, so that first page views read the cache, then (``samples``) their samples
        of seeds; returns how many answers were warmed."""
        answers = self.answers.current()
        warmed = 0
        for answer in answers.all():
            if stop is not None and stop.is_set():
                break
            self.sampler.compute_own(answer, figures)
            warmed += 1
        # Then every answer's sample of seeds (ten or more runs each), for its findings.
        for answer in answers.all() if samples else ():
            if stop is not None and stop.is_set():
                break
            self.sampler.compute(answer)
        return warmed
