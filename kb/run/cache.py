"""Content-addressed, atomic, process-safe cache of demonstration results and rendered figures.

A result is addressed by everything it depends on: the experiment, its resolved parameters,
the seed, a hash of the engine's source (without ``engine/figures/``, so drawing tweaks keep
results) and the numpy and matplotlib versions. Entries are never overwritten by a different
computation, so when the key changes the previous entry for the same (experiment, params,
seed) is still there and can say why it is stale.

Layout under ``root``::

    results/<subject[:2]>/<subject>/<key>.npz   one entry: arrays + a JSON "meta" member
    figures/<key[:2]>/<key>.<svg|png>           rendered figure bytes
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
import time
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator

import numpy as np
from filelock import FileLock

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


# --- locks: one computation per key, across threads and processes -------------------------
# filelock's FileLock (flock on Unix): one lock object per acquisition, so threads of one process
# exclude each other as other processes do. It unlocks explicitly on release, so a forked child
# that inherited the descriptor (a demonstration computing while the lock is held) does not
# keep the lock after its parent lets go.


# --- the cache ----------------------------------------------------------------------------


@dataclass
class Cache:
    """Results and rendered figures under ``root``; ``environment`` defaults to this process's."""

    root: Path
    environment: Environment = field(default_factory=Environment.current)

    def __post_init__(self) -> None:
        self.root = Path(self.root)

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

    def holds(self, experiment: str, params: dict[str, Any], seed: int) -> bool:
        """Whether a readable entry for the key is stored: ``lookup``'s hit, without looking
        for older entries to explain a miss."""
        path = self._entry_path(experiment, params, seed)
        return _read_entry(path, path.stem) is not None

    def lookup(self, experiment: str, params: dict[str, Any], seed: int) -> Lookup:
        """A hit, a miss, or stale: an older entry exists, computed under other key parts."""
        parts = self.key_parts(experiment, params, seed)
        path = self._entry_path(experiment, params, seed)
        key = path.stem
        entry = _read_entry(path, key)
        if entry is not None:
            return Lookup("hit", key, entry)
        older = [
            e for p in path.parent.glob("*.npz") if p != path and (e := _read_entry(p)) is not None
        ]
        if not older:
            return Lookup("miss", key)
        latest = max(older, key=lambda e: e.computed_at)
        return Lookup("stale", key, reason=_why_stale(latest.parts, parts))

    def get_or_compute(
        self,
        experiment: str,
        params: dict[str, Any],
        seed: int,
        compute: Callable[[], tuple[dict[str, Any], float]],
        *,
        fresh: bool = False,
    ) -> tuple[Entry, bool]:
        """The entry for the key, computing it once if missing: ``(entry, read_from_cache)``.

        ``compute()`` returns the values and the seconds they took. Concurrent callers for one
        key, in threads or processes, wait for the first and read its entry. With ``fresh`` an
        entry is recomputed unless it was written while this call waited for the lock.
        """
        path = self._entry_path(experiment, params, seed)
        key = path.stem
        started = time.time()
        if not fresh and (entry := _read_entry(path, key)) is not None:
            return entry, True
        with self._locked(key):
            entry = _read_entry(path, key)
            if entry is not None and (not fresh or entry.computed_at >= started):
                return entry, True
            if entry is None and logger.isEnabledFor(logging.INFO):
                lookup = self.lookup(experiment, params, seed)
                logger.info("computing %s (seed %s): %s", experiment, seed,
                            f"stale: {lookup.reason}" if lookup.status == "stale" else "missing")
            values, seconds = compute()
            check_values(experiment, values)
            entry = Entry(key, self.key_parts(experiment, params, seed), freeze_values(values),
                          seconds, time.time())
            _write_entry(path, entry)
            return entry, False

    def get_or_render(self, key: str, suffix: str, render: Callable[[], bytes]) -> bytes:
        """Rendered bytes stored under ``key``, rendering them once if missing."""
        path = self.root / "figures" / key[:2] / f"{key}.{suffix}"
        try:
            return path.read_bytes()
        except FileNotFoundError:
            pass
        with self._locked(key):
            try:
                return path.read_bytes()
            except FileNotFoundError:
                data = render()
                write_atomically(path, lambda out: out.write(data))
                return data

    @contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        lock_path = self.root / "locks" / key[:2] / f"{key}.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(lock_path):
            yield
