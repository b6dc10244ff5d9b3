"""Content-addressed, atomic, process-safe cache of demonstration results and rendered figures.

A result is addressed by everything it depends on: the experiment, its resolved parameters,
the seed, a hash of the engine's source (without ``engine/figures/``, so drawing tweaks keep
results) and the numpy and matplotlib versions. Entries are never overwritten by a different
computation, so when the key changes the previous entry for the same (experiment, params,
seed) is still there and can say why it is stale.

Layout under ``root``::

    results/<subject[:2]>/<subject>/<key>.npz   one entry: arrays + a JSON "meta" member
    figures/<key[:2]>/<key>.<svg|png>           rendered figure bytes
    failures/<key[:2]>/<key>.json               a failed computation, not repeated for a while
    locks/<key[:2]>/<key>.lock                  flock files that make computing once per key

Loading never unpickles (``allow_pickle=False``): reading a cache file cannot run code.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import tempfile
import threading
import time
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator

import numpy as np
from cachetools import LRUCache
from filelock import FileLock, Timeout

import engine.registry

logger = logging.getLogger(__name__)

FORMAT = 1  # bump when the entry layout changes; it is part of every key

ENGINE_DIR = Path(engine.registry.__file__).resolve().parent


# --- what a result depends on besides (experiment, params, seed) -------------------------


def digest(data: Any) -> str:
    """A short, stable hash of JSON-able ``data`` (dict keys sorted)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def source_hash(root: Path, files: Iterable[Path]) -> str:
    """Hash of the files' paths (relative to ``root``) and contents."""
    sha = hashlib.sha256()
    for path in sorted(files):
        sha.update(path.relative_to(root).as_posix().encode() + b"\0")
        sha.update(path.read_bytes() + b"\0")
    return sha.hexdigest()[:32]


@dataclass(frozen=True)
class Environment:
    engine: str  # engine_source_hash()
    numpy: str
    matplotlib: str

    @staticmethod
    def current() -> "Environment":
        return _current_environment()


@functools.cache
def _current_environment() -> Environment:
    engine_files = [
        p for p in ENGINE_DIR.rglob("*.py") if p.relative_to(ENGINE_DIR).parts[0] != "figures"
    ]
    return Environment(
        engine=source_hash(ENGINE_DIR, engine_files),
        numpy=np.__version__,
        # Read from the installed metadata: computing results must not import matplotlib.
        matplotlib=importlib.metadata.version("matplotlib"),
    )


def _why_stale(old: dict, new: dict) -> str:
    reasons = []
    if old.get("format") != new["format"]:
        reasons.append(f"cache format changed ({old.get('format')} -> {new['format']})")
    if old.get("engine") != new["engine"]:
        reasons.append(
            f"engine source changed ({str(old.get('engine'))[:4]}… -> {new['engine'][:4]}…)"
        )
    for library in ("numpy", "matplotlib"):
        if old.get(library) != new[library]:
            reasons.append(f"{library} {old.get(library)} -> {new[library]}")
    return "; ".join(reasons)


# --- result values: what may be stored and how it round-trips exactly ---------------------


def check_values(experiment: str, values: Any) -> None:
    """Refuse results the cache cannot store exactly; the message names the field."""
    if not isinstance(values, dict):
        raise ValueError(f"experiment '{experiment}' returned {type(values).__name__}, not dict")
    for name, value in values.items():
        if not (isinstance(name, str) and name.isidentifier()):
            raise ValueError(f"experiment '{experiment}' returned a field named {name!r}, "
                             "not an identifier")
        plain = type(value) in (bool, int, float, str)
        numeric = isinstance(value, (np.ndarray, np.generic)) and not value.dtype.hasobject
        if not (plain or numeric):
            raise ValueError(
                f"experiment '{experiment}' returned field '{name}' as {type(value).__name__}: "
                "results hold numbers, bools, strings and numpy arrays"
            )


def freeze_values(values: dict[str, Any]) -> dict[str, Any]:
    # Results are shared by claims, inline values and figures: none may change them in place.
    for value in values.values():
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
    return values


def _encode(values: dict[str, Any]) -> tuple[list[list], dict[str, np.ndarray]]:
    """JSON field descriptions + the arrays to store alongside (numpy scalars as 0-d arrays)."""
    fields, arrays = [], {}
    for name, value in values.items():
        if isinstance(value, (np.ndarray, np.generic)):
            fields.append([name, "array" if isinstance(value, np.ndarray) else "scalar"])
            arrays[f"value.{name}"] = np.asarray(value)
        elif isinstance(value, float):
            fields.append([name, "float", value.hex()])  # exact, including nan, inf and -0.0
        else:  # bool, int, str: JSON holds them exactly
            fields.append([name, type(value).__name__, value])
    return fields, arrays


def _decode(fields: list[list], arrays: Any) -> dict[str, Any]:
    values = {}
    for name, kind, *plain in fields:
        if kind == "array":
            values[name] = arrays[f"value.{name}"]
        elif kind == "scalar":
            values[name] = arrays[f"value.{name}"][()]
        elif kind == "float":
            values[name] = float.fromhex(plain[0])
        else:
            values[name] = {"bool": bool, "int": int, "str": str}[kind](plain[0])
    return values


# --- entries ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    key: str
    parts: dict[str, Any]  # the key parts it was computed under
    values: dict[str, Any]
    seconds: float  # compute time of the original computation
    computed_at: float  # Unix time


@dataclass(frozen=True)
class Lookup:
    status: str  # "hit", "miss" or "stale"
    key: str
    entry: Entry | None = None  # the entry, on a hit
    reason: str = ""  # on "stale": e.g. "engine source changed (3f2a… -> 9c1b…)"


_UNREADABLE = (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile)


def _read_entry(path: Path, key: str | None = None) -> Entry | None:
    """The entry at ``path``, or None if there is none or it cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            meta = json.loads(stored["meta"].tobytes())
            if key is not None and meta["key"] != key:
                raise ValueError(f"holds key {meta['key']}")
            values = _decode(meta["fields"], stored)
    except FileNotFoundError:
        return None
    except _UNREADABLE as exc:
        logger.warning("ignoring unreadable cache entry %s: %s", path, exc)
        return None
    return Entry(
        meta["key"], meta["parts"], freeze_values(values), meta["seconds"], meta["computed_at"]
    )


def _write_entry(path: Path, entry: Entry) -> None:
    fields, arrays = _encode(entry.values)
    meta = {
        "key": entry.key,
        "parts": entry.parts,
        "seconds": entry.seconds,
        "computed_at": entry.computed_at,
        "fields": fields,
    }
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    write_atomically(path, lambda out: np.savez(out, **arrays))


def write_atomically(path: Path, write: Callable[[BinaryIO], Any]) -> None:
    """Write ``path`` so that readers see either nothing or the whole file.

    The data goes to a temporary file in the same folder (same file system, so the rename is
    atomic), is flushed to disk, and only then renamed over ``path``. A writer killed midway
    leaves a ``.<name>.*.tmp`` file, which no reader opens.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    # Make the rename itself durable.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# --- failures: a computation that failed is not repeated at once -------------------------


class ComputationFailed(Exception):
    """A computation that failed (raised, died, timed out, reached a limit): raised by the
    ``compute`` function given to ``get_or_compute``, which records it, and raised again from
    the record while it is fresh. The message says what happened."""


class InProgress(Exception):
    """``get_or_compute(wait=False)`` found another thread or process computing the key."""


@dataclass(frozen=True)
class Failure:
    key: str
    message: str
    at: float  # Unix time


def _read_failure(path: Path, key: str) -> Failure | None:
    try:
        record = json.loads(path.read_text())
        if record["key"] != key:
            raise ValueError(f"holds key {record['key']}")
        return Failure(key, str(record["message"]), float(record["at"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("ignoring unreadable failure record %s: %s", path, exc)
        return None


# --- locks: one computation per key, across threads and processes -------------------------
# filelock's FileLock (flock on Unix): one lock object per acquisition, so threads of one process
# exclude each other as other processes do. It unlocks explicitly on release, so a forked child
# that inherited the descriptor (a demonstration computing while the lock is held) does not
# keep the lock after its parent lets go. Where no lock file can be made (a read-only or full
# folder) a lock per key within this process stands in.


class _LocalLocks:
    """Per-key locks of this process, for when the cache folder cannot hold lock files."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def get(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())


# --- storage trouble: reported once, never fatal ------------------------------------------


class _Trouble:
    """Logs a kind of storage trouble once, until the storage works again."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._seen: set[str] = set()

    def report(self, kind: str, exc: OSError) -> None:
        with self._guard:
            first = kind not in self._seen
            self._seen.add(kind)
        if first:
            logger.warning("cache: cannot %s (%s); serving without storing until it can",
                           kind, exc)

    def cleared(self, kind: str) -> None:
        if kind in self._seen:
            with self._guard:
                self._seen.discard(kind)
            logger.info("cache: can %s again", kind)


# --- the cache ----------------------------------------------------------------------------

LEFTOVER_AGE = 600.0  # seconds: a temporary file this old belongs to a writer that was killed
PRUNE_EVERY = 0.05  # prune after writing this fraction of the size bound


@dataclass
class Pruned:
    """What one ``Cache.prune`` found and removed."""

    size: int  # bytes of entries and figures before
    removed: int  # entries and figures evicted
    freed: int  # their bytes
    leftovers: int  # temporary files of killed writers and expired failure records removed


@dataclass
class Cache:
    """Results and rendered figures under ``root``; ``environment`` defaults to this process's.

    ``failure_ttl``: seconds a failed computation is recorded and not repeated (0: never
    recorded). ``max_bytes``: the size bound that ``prune`` keeps results and figures under,
    evicting the least recently used, never a key in ``protected()``; writes prune now and
    then when it is set. Storage trouble (a read-only or full folder) is never an error: what
    cannot be written is kept in this process's memory (``kept`` entries at most).
    """

    root: Path
    environment: Environment = field(default_factory=Environment.current)
    failure_ttl: float = 600.0
    max_bytes: int | None = None
    protected: Callable[[], set[str]] = field(default=lambda: set())
    kept: int = 256

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self._memory: LRUCache = LRUCache(max(self.kept, 1))  # key -> Entry or Failure
        self._memory_guard = threading.Lock()
        self._local_locks = _LocalLocks()
        self._trouble = _Trouble()
        self._written = 0
        self._written_guard = threading.Lock()

    def key_parts(self, experiment: str, params: dict[str, Any], seed: int) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "experiment": experiment,
            "params": params,
            "seed": seed,
            "engine": self.environment.engine,
            "numpy": self.environment.numpy,
            "matplotlib": self.environment.matplotlib,
        }

    def key(self, experiment: str, params: dict[str, Any], seed: int) -> str:
        return digest(self.key_parts(experiment, params, seed))

    def _subject_dir(self, experiment: str, params: dict[str, Any], seed: int) -> Path:
        subject = digest({"experiment": experiment, "params": params, "seed": seed})
        return self.root / "results" / subject[:2] / subject

    def _entry_path(self, experiment: str, params: dict[str, Any], seed: int) -> Path:
        key = self.key(experiment, params, seed)
        return self._subject_dir(experiment, params, seed) / f"{key}.npz"

    def _failure_path(self, key: str) -> Path:
        return self.root / "failures" / key[:2] / f"{key}.json"

    def figure_path(self, key: str, suffix: str) -> Path:
        return self.root / "figures" / key[:2] / f"{key}.{suffix}"

    # reading

    def _entry(self, path: Path) -> Entry | None:
        """The entry at ``path`` (its stem is the key), from disk or else from memory."""
        entry = _read_entry(path, path.stem)
        if entry is not None:
            _touch(path)
            return entry
        with self._memory_guard:
            kept = self._memory.get(path.stem)
        return kept if isinstance(kept, Entry) else None

    def _failure(self, key: str) -> Failure | None:
        """The failure recorded for ``key`` if it is still fresh."""
        if self.failure_ttl <= 0:
            return None
        with self._memory_guard:
            failure = self._memory.get(key)
        if not isinstance(failure, Failure):
            failure = _read_failure(self._failure_path(key), key)
        if failure is not None and time.time() - failure.at < self.failure_ttl:
            return failure
        return None

    def holds(self, experiment: str, params: dict[str, Any], seed: int) -> bool:
        """Whether a readable entry for the key is stored: ``lookup``'s hit, without looking
        for older entries to explain a miss."""
        return self._entry(self._entry_path(experiment, params, seed)) is not None

    def settled(self, experiment: str, params: dict[str, Any], seed: int) -> bool:
        """Whether nothing needs computing: the entry is stored, or a failure is recorded."""
        path = self._entry_path(experiment, params, seed)
        return self._entry(path) is not None or self._failure(path.stem) is not None

    def read(self, experiment: str, params: dict[str, Any], seed: int) -> Entry | None:
        """The stored entry, or None; ComputationFailed while a failure is recorded."""
        path = self._entry_path(experiment, params, seed)
        entry = self._entry(path)
        if entry is None and (failure := self._failure(path.stem)) is not None:
            raise ComputationFailed(failure.message)
        return entry

    def lookup(self, experiment: str, params: dict[str, Any], seed: int) -> Lookup:
        """A hit, a miss, or stale: an older entry exists, computed under other key parts."""
        parts = self.key_parts(experiment, params, seed)
        path = self._entry_path(experiment, params, seed)
        key = path.stem
        entry = self._entry(path)
        if entry is not None:
            return Lookup("hit", key, entry)
        try:
            siblings = [p for p in path.parent.glob("*.npz") if p != path]
        except OSError:
            siblings = []
        older = [e for p in siblings if (e := _read_entry(p)) is not None]
        if not older:
            return Lookup("miss", key)
        latest = max(older, key=lambda e: e.computed_at)
        return Lookup("stale", key, reason=_why_stale(latest.parts, parts))

    # computing

    def get_or_compute(
        self,
        experiment: str,
        params: dict[str, Any],
        seed: int,
        compute: Callable[[], tuple[dict[str, Any], float]],
        *,
        fresh: bool = False,
        wait: bool = True,
    ) -> tuple[Entry, bool]:
        """The entry for the key, computing it once if missing: ``(entry, read_from_cache)``.

        ``compute()`` returns the values and the seconds they took, or raises
        ComputationFailed, which is recorded for ``failure_ttl`` seconds: until then the key
        raises it again instead of computing. Concurrent callers for one key, in threads or
        processes, wait for the first and read its entry (or its failure); with ``wait=False``
        they raise InProgress instead of waiting. With ``fresh`` an entry (or a failure) is
        recomputed unless it was written while this call waited for the lock.
        """
        path = self._entry_path(experiment, params, seed)
        key = path.stem
        started = time.time()
        if not fresh:
            if (entry := self._entry(path)) is not None:
                return entry, True
            if (failure := self._failure(key)) is not None:
                raise ComputationFailed(failure.message)
        with self._locked(key, wait):
            entry = self._entry(path)
            if entry is not None and (not fresh or entry.computed_at >= started):
                return entry, True
            failure = self._failure(key)
            if failure is not None and (not fresh or failure.at >= started):
                raise ComputationFailed(failure.message)
            if entry is None and logger.isEnabledFor(logging.INFO):
                lookup = self.lookup(experiment, params, seed)
                logger.info("computing %s (seed %s): %s", experiment, seed,
                            f"stale: {lookup.reason}" if lookup.status == "stale" else "missing")
            try:
                values, seconds = compute()
            except ComputationFailed as exc:
                self._record_failure(Failure(key, str(exc), time.time()))
                raise
            check_values(experiment, values)
            entry = Entry(key, self.key_parts(experiment, params, seed), freeze_values(values),
                          seconds, time.time())
            self._store(path, entry)
            return entry, False

    def _store(self, path: Path, entry: Entry) -> None:
        try:
            _write_entry(path, entry)
        except OSError as exc:
            self._trouble.report("write results", exc)
            with self._memory_guard:
                self._memory[entry.key] = entry
            return
        self._trouble.cleared("write results")
        self._wrote(path)

    def _record_failure(self, failure: Failure) -> None:
        if self.failure_ttl <= 0:
            return
        record = json.dumps({"key": failure.key, "message": failure.message, "at": failure.at})
        try:
            write_atomically(self._failure_path(failure.key),
                             lambda out: out.write(record.encode()))
        except OSError as exc:
            self._trouble.report("record failures", exc)
            with self._memory_guard:
                self._memory[failure.key] = failure

    def get_or_render(self, key: str, suffix: str, render: Callable[[], bytes],
                      valid: Callable[[bytes], bool] = lambda data: True) -> bytes:
        """Rendered bytes stored under ``key``, rendering them once if missing. Stored bytes
        that are not ``valid`` (a truncated file) are rendered and written again."""
        path = self.figure_path(key, suffix)
        data = self._read_figure(path, valid)
        if data is not None:
            return data
        with self._locked(key, wait=True):
            data = self._read_figure(path, valid)
            if data is not None:
                return data
            data = render()
            try:
                write_atomically(path, lambda out: out.write(data))
            except OSError as exc:
                self._trouble.report("write figures", exc)
            else:
                self._trouble.cleared("write figures")
                self._wrote(path)
            return data

    @staticmethod
    def _read_figure(path: Path, valid: Callable[[bytes], bool]) -> bytes | None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            logger.warning("ignoring unreadable figure %s: %s", path, exc)
            return None
        if not valid(data):
            logger.warning("ignoring damaged figure %s (%d bytes): rendering it again",
                           path, len(data))
            return None
        _touch(path)
        return data

    @contextmanager
    def _locked(self, key: str, wait: bool) -> Iterator[None]:
        lock_path = self.root / "locks" / key[:2] / f"{key}.lock"
        try:
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            lock = FileLock(lock_path)
            lock.acquire(blocking=wait)
        except Timeout:
            raise InProgress(key) from None
        except OSError as exc:  # no lock file here: this process's own lock for the key
            self._trouble.report("make lock files", exc)
            local = self._local_locks.get(key)
            if not local.acquire(blocking=wait):
                raise InProgress(key) from None
            try:
                yield
            finally:
                local.release()
            return
        try:
            yield
        finally:
            lock.release()

    # the size bound and the leftovers of killed writers

    def _wrote(self, path: Path) -> None:
        if self.max_bytes is None:
            return
        try:
            size = path.stat().st_size
        except OSError:
            return
        with self._written_guard:
            self._written += size
            due = self._written >= self.max_bytes * PRUNE_EVERY
            if due:
                self._written = 0
        if due:
            self.prune()

    def prune(self, leftover_age: float = LEFTOVER_AGE) -> Pruned | None:
        """Evict the least recently used results and figures (never a ``protected`` key) until
        they fit in ``max_bytes``, with a tenth to spare; remove the temporary files of killed
        writers older than ``leftover_age`` seconds and expired failure records. One process
        prunes at a time (None: another one is pruning). Storage trouble stops it quietly."""
        try:
            (self.root / "locks").mkdir(parents=True, exist_ok=True)
            lock = FileLock(self.root / "locks" / "prune.lock")
            lock.acquire(blocking=False)
        except Timeout:
            return None
        except OSError as exc:
            self._trouble.report("prune", exc)
            return None
        try:
            return self._prune(leftover_age)
        finally:
            lock.release()

    def _prune(self, leftover_age: float) -> Pruned:
        now = time.time()
        files, leftovers = [], 0
        for top in ("results", "figures", "failures"):
            for folder, _, names in os.walk(self.root / top):
                for name in names:
                    path = Path(folder, name)
                    try:
                        stat = path.stat()
                    except OSError:
                        continue
                    expired = (name.endswith(".tmp") and now - stat.st_mtime > leftover_age) \
                        or (top == "failures" and now - stat.st_mtime > self.failure_ttl)
                    if expired:
                        leftovers += _remove(path)
                    elif top != "failures" and not name.endswith(".tmp"):
                        files.append((stat.st_mtime, stat.st_size, path))
        size = sum(s for _, s, _ in files)
        removed = freed = 0
        if self.max_bytes is not None and size > self.max_bytes:
            protected = self.protected()
            target = self.max_bytes * 0.9
            for _, file_size, path in sorted(files):
                if size - freed <= target:
                    break
                if path.name.split(".")[0] in protected:
                    continue
                if _remove(path):
                    removed += 1
                    freed += file_size
            logger.info("cache: evicted %d least recently used files (%.1f MiB) to stay under "
                        "%.0f MiB", removed, freed / 2**20, self.max_bytes / 2**20)
        return Pruned(size, removed, freed, leftovers)


def _touch(path: Path) -> None:
    """Mark ``path`` as just used (its mtime orders evictions); a read-only folder is fine."""
    try:
        os.utime(path)
    except OSError:
        pass


def _remove(path: Path) -> int:
    try:
        path.unlink()
        return 1
    except OSError:
        return 0
