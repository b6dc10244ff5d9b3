"""The result cache: exact round trips, hit / miss / stale with its reason, computing once
across threads and processes, and atomic writes that a killed writer cannot corrupt."""
from __future__ import annotations

import json
import multiprocessing
import os
import signal
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

import kb.run.cache
import kb.run.figures
from kb.run.cache import Cache, Environment, check_values

FORK = multiprocessing.get_context("fork")
ENV = Environment(engine="3f2a" + "0" * 28, numpy="1.26.4", matplotlib="3.8.0")
PARAMS = {"depth": 10, "scale": 0.1, "bn": True, "mode": "fast"}


def counted_compute(count_dir: Path, values: dict, delay: float = 0.0):
    """A compute function that leaves one file per call in ``count_dir``."""

    def compute():
        count_dir.mkdir(parents=True, exist_ok=True)
        (count_dir / f"{os.getpid()}-{uuid.uuid4().hex}").touch()
        time.sleep(delay)
        return dict(values), 0.25

    return compute


def computations(count_dir: Path) -> int:
    return len(list(count_dir.iterdir())) if count_dir.exists() else 0


def must_not_compute():
    raise AssertionError("computed although the entry is cached")


def entry_files(root: Path) -> list[Path]:
    return sorted((root / "results").rglob("*.npz"))


# --- values -------------------------------------------------------------------------------


def test_every_kind_of_value_round_trips_exactly(tmp_path):
    values = {
        "curve": np.linspace(-1, 1, 7),
        "grid": np.asfortranarray(np.arange(12, dtype=np.int16).reshape(3, 4)),
        "odd": np.array([np.nan, -0.0, np.inf, 1e-310]),
        "mask": np.array([True, False]),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "np_float": np.float32(0.1),
        "np_int": np.int64(-7),
        "np_bool": np.bool_(True),
        "ratio": 1 / 3,
        "nan": float("nan"),
        "negative_zero": -0.0,
        "huge": 2**80 + 1,
        "count": 3,
        "passed": False,
        "label": "γ ≠ 1",
    }
    cache = Cache(tmp_path, ENV)
    cache.get_or_compute("exp", PARAMS, 0, lambda: (values, 1.5))
    entry = Cache(tmp_path, ENV).lookup("exp", PARAMS, 0).entry

    assert list(entry.values) == list(values)
    for name, value in values.items():
        loaded = entry.values[name]
        assert type(loaded) is type(value), name
        if isinstance(value, (np.ndarray, np.generic)):
            assert loaded.dtype == value.dtype and loaded.shape == value.shape, name
            assert np.asarray(loaded).tobytes() == np.asarray(value).tobytes(), name
        elif isinstance(value, float):
            assert loaded.hex() == value.hex(), name
        else:
            assert loaded == value, name
    assert entry.seconds == 1.5


def test_loaded_arrays_are_read_only(tmp_path):
    cache = Cache(tmp_path, ENV)
    cache.get_or_compute("exp", PARAMS, 0, lambda: ({"x": np.ones(3)}, 0.1))
    x = cache.lookup("exp", PARAMS, 0).entry.values["x"]
    with pytest.raises(ValueError, match="read-only"):
        x[0] = 5.0


@pytest.mark.parametrize(
    "values, message",
    [
        ({"xs": [1, 2]}, "field 'xs' as list"),
        ({"table": np.array([{}, 1], dtype=object)}, "field 'table' as ndarray"),
        ({"not valid": 1.0}, "field named 'not valid'"),
        ([1.0], "returned list, not dict"),
    ],
)
def test_values_that_cannot_be_stored_exactly_are_refused_by_name(tmp_path, values, message):
    with pytest.raises(ValueError, match=message):
        check_values("exp", values)
    with pytest.raises(ValueError, match=message):
        Cache(tmp_path, ENV).get_or_compute("exp", PARAMS, 0, lambda: (values, 0.1))
    assert entry_files(tmp_path) == []


def test_loading_never_unpickles(tmp_path):
    """An entry holding a pickled object is ignored, and the pickle's code never runs."""
    cache = Cache(tmp_path, ENV)
    cache.get_or_compute("exp", PARAMS, 0, lambda: ({"x": np.ones(2)}, 0.1))
    [path] = entry_files(tmp_path)
    marker = tmp_path / "pickle-ran"
    meta = json.loads(np.load(path)["meta"].tobytes())
    bomb = np.array([_Bomb(str(marker))], dtype=object)
    with open(path, "wb") as out:
        np.savez(out, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **{"value.x": bomb})

    assert cache.lookup("exp", PARAMS, 0).status == "miss"
    assert not cache.holds("exp", PARAMS, 0)
    assert not marker.exists()


class _Bomb:
    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


# --- keys, hits, misses, staleness ----------------------------------------------------------


def test_key_changes_with_every_part_and_ignores_parameter_order(tmp_path):
    cache = Cache(tmp_path, ENV)
    key = cache.key("exp", PARAMS, 0)
    assert cache.key("exp", dict(reversed(PARAMS.items())), 0) == key
    different = [
        cache.key("other", PARAMS, 0),
        cache.key("exp", {**PARAMS, "depth": 11}, 0),
        cache.key("exp", {**PARAMS, "scale": 0.1000001}, 0),
        cache.key("exp", PARAMS, 1),
        Cache(tmp_path, Environment("9c1b" + "0" * 28, ENV.numpy, ENV.matplotlib)).key(
            "exp", PARAMS, 0),
        Cache(tmp_path, Environment(ENV.engine, "2.1.0", ENV.matplotlib)).key("exp", PARAMS, 0),
        Cache(tmp_path, Environment(ENV.engine, ENV.numpy, "3.9.0")).key("exp", PARAMS, 0),
    ]
    assert len({key, *different}) == len(different) + 1


def test_miss_then_hit_with_the_original_compute_time(tmp_path):
    cache = Cache(tmp_path, ENV)
    assert cache.lookup("exp", PARAMS, 0).status == "miss"
    assert not cache.holds("exp", PARAMS, 0)

    before = time.time()
    entry, cached = cache.get_or_compute("exp", PARAMS, 0, lambda: ({"ratio": 2.5}, 1.25))
    assert not cached and entry.values == {"ratio": 2.5}

    lookup = cache.lookup("exp", PARAMS, 0)
    assert lookup.status == "hit" and lookup.key == cache.key("exp", PARAMS, 0)
    assert cache.holds("exp", PARAMS, 0) and not cache.holds("exp", PARAMS, 1)
    assert lookup.entry.seconds == 1.25 and lookup.entry.computed_at >= before
    assert lookup.entry.parts == cache.key_parts("exp", PARAMS, 0)

    again, cached = cache.get_or_compute("exp", PARAMS, 0, must_not_compute)
    assert cached and again.values == {"ratio": 2.5} and again.seconds == 1.25
    assert cache.lookup("exp", PARAMS, 1).status == "miss"


def test_stale_entry_says_the_engine_source_changed(tmp_path):
    Cache(tmp_path, ENV).get_or_compute("exp", PARAMS, 0, lambda: ({"ratio": 2.5}, 0.1))
    changed = Cache(tmp_path, Environment("9c1b" + "0" * 28, ENV.numpy, ENV.matplotlib))

    lookup = changed.lookup("exp", PARAMS, 0)
    assert lookup.status == "stale" and lookup.entry is None
    assert lookup.reason == "engine source changed (3f2a… -> 9c1b…)"


def test_stale_entry_names_library_versions_and_reports_the_latest_entry(tmp_path):
    Cache(tmp_path, ENV).get_or_compute("exp", PARAMS, 0, lambda: ({"ratio": 2.5}, 0.1))
    time.sleep(0.01)
    newer = Environment(ENV.engine, "2.0.0", ENV.matplotlib)
    Cache(tmp_path, newer).get_or_compute("exp", PARAMS, 0, lambda: ({"ratio": 2.5}, 0.1))

    lookup = Cache(tmp_path, Environment(ENV.engine, "2.1.0", "3.9.0")).lookup("exp", PARAMS, 0)
    assert lookup.status == "stale"
    assert lookup.reason == "numpy 2.0.0 -> 2.1.0; matplotlib 3.8.0 -> 3.9.0"
    # Entries are addressed by the full key: the older environment still hits its own.
    assert Cache(tmp_path, ENV).lookup("exp", PARAMS, 0).status == "hit"


def test_fresh_recomputes_and_refreshes_the_entry(tmp_path):
    cache, count_dir = Cache(tmp_path, ENV), tmp_path / "count"
    first, _ = cache.get_or_compute("exp", PARAMS, 0, counted_compute(count_dir, {"v": 1}))
    second, cached = cache.get_or_compute(
        "exp", PARAMS, 0, counted_compute(count_dir, {"v": 2}), fresh=True
    )
    assert not cached and computations(count_dir) == 2
    assert second.computed_at > first.computed_at
    assert cache.lookup("exp", PARAMS, 0).entry.values == {"v": 2}


def test_an_unreadable_entry_is_a_miss_and_gets_recomputed(tmp_path):
    cache = Cache(tmp_path, ENV)
    cache.get_or_compute("exp", PARAMS, 0, lambda: ({"v": 1}, 0.1))
    [path] = entry_files(tmp_path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    assert cache.lookup("exp", PARAMS, 0).status == "miss"
    entry, cached = cache.get_or_compute("exp", PARAMS, 0, lambda: ({"v": 1}, 0.1))
    assert not cached and cache.lookup("exp", PARAMS, 0).status == "hit"


# --- computing once -------------------------------------------------------------------------


def _ask_in_child(root: Path, count_dir: Path, out: Path) -> None:
    entry, _ = Cache(root, ENV).get_or_compute(
        "exp", PARAMS, 0, counted_compute(count_dir, {"v": np.arange(4.0), "pid": os.getpid()}, 0.3)
    )
    out.write_text(json.dumps({"pid": int(entry.values["pid"]), "key": entry.key}))


def test_processes_asking_for_one_missing_entry_compute_it_once(tmp_path):
    count_dir = tmp_path / "count"
    children = [
        FORK.Process(target=_ask_in_child, args=(tmp_path / "cache", count_dir, tmp_path / f"{i}"))
        for i in range(4)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(10)
        assert child.exitcode == 0

    assert computations(count_dir) == 1
    answers = [json.loads((tmp_path / f"{i}").read_text()) for i in range(4)]
    assert len({(a["pid"], a["key"]) for a in answers}) == 1  # all read the one computation


def test_threads_asking_for_one_missing_entry_compute_it_once(tmp_path):
    cache, count_dir = Cache(tmp_path / "cache", ENV), tmp_path / "count"
    outcomes = []

    def ask():
        outcomes.append(cache.get_or_compute(
            "exp", PARAMS, 0, counted_compute(count_dir, {"v": 1}, 0.2)))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert computations(count_dir) == 1
    assert sorted(cached for _, cached in outcomes) == [False, True, True, True]


def test_figure_bytes_are_rendered_once_and_read_back(tmp_path):
    cache, calls = Cache(tmp_path, ENV), []

    def render():
        calls.append(1)
        return b"<svg/>"

    assert cache.get_or_render("ab" * 16, "svg", render) == b"<svg/>"
    assert Cache(tmp_path, ENV).get_or_render("ab" * 16, "svg", render) == b"<svg/>"
    assert calls == [1]


# --- atomic writes ----------------------------------------------------------------------------


def _write_then_hang(root: Path, ready: Path) -> None:
    def hang_in_fsync(fd):
        ready.touch()  # the data is in the temporary file: the write is midway
        time.sleep(60)

    os.fsync = hang_in_fsync  # this forked child's copy of os only
    Cache(root, ENV).get_or_compute("exp", PARAMS, 0, lambda: ({"v": np.ones(100_000)}, 0.1))


def test_a_writer_killed_midway_leaves_nothing_a_reader_takes_for_an_entry(tmp_path):
    ready = tmp_path / "ready"
    writer = FORK.Process(target=_write_then_hang, args=(tmp_path / "cache", ready))
    writer.start()
    deadline = time.monotonic() + 10
    while not ready.exists():
        assert time.monotonic() < deadline and writer.is_alive(), "the writer never got to fsync"
        time.sleep(0.01)
    os.kill(writer.pid, signal.SIGKILL)
    writer.join()

    cache = Cache(tmp_path / "cache", ENV)
    leftovers = [p for p in (tmp_path / "cache" / "results").rglob("*") if p.is_file()]
    assert leftovers and all(p.name.endswith(".tmp") for p in leftovers)  # it was midway
    assert entry_files(tmp_path / "cache") == []
    assert cache.lookup("exp", PARAMS, 0).status == "miss"
    # The killed writer's lock died with it: the next request computes at once.
    entry, cached = cache.get_or_compute("exp", PARAMS, 0, lambda: ({"v": 1}, 0.1))
    assert not cached and cache.lookup("exp", PARAMS, 0).status == "hit"


def test_write_atomically_removes_its_temporary_file_when_writing_fails(tmp_path):
    def fail(out):
        out.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        kb.run.cache.write_atomically(tmp_path / "x.npz", fail)
    assert list(tmp_path.iterdir()) == []


def test_a_child_forked_while_computing_does_not_keep_the_lock(tmp_path):
    """The executor forks its computations while holding the key's lock; a child must not
    keep that lock once the parent releases it."""
    cache, sleepers = Cache(tmp_path, ENV), []

    def compute_leaving_a_child():
        sleepers.append(FORK.Process(target=time.sleep, args=(30,)))
        sleepers[-1].start()
        return {"v": 1}, 0.1

    try:
        cache.get_or_compute("exp", PARAMS, 0, compute_leaving_a_child)
        again = threading.Thread(target=cache.get_or_compute,
                                 args=("exp", PARAMS, 0, lambda: ({"v": 2}, 0.1)),
                                 kwargs={"fresh": True})
        again.start()
        again.join(5)
        assert not again.is_alive(), "the lock is still held by the forked child"
        assert sleepers[0].is_alive()
    finally:
        for sleeper in sleepers:
            sleeper.kill()
            sleeper.join()


# --- failures, waiting, storage trouble, the size bound -----------------------------------


def test_a_failure_is_recorded_for_failure_ttl_seconds_then_computed_again(tmp_path, monkeypatch):
    now = [1_000_000.0]
    monkeypatch.setattr(kb.run.cache.time, "time", lambda: now[0])
    cache, calls = Cache(tmp_path, ENV, failure_ttl=600), []

    def fails():
        calls.append(1)
        raise kb.run.cache.ComputationFailed("timed out after 60 s")

    for _ in range(2):
        with pytest.raises(kb.run.cache.ComputationFailed, match="timed out after 60 s"):
            Cache(tmp_path, ENV).get_or_compute("exp", PARAMS, 0, fails)
    assert calls == [1] and cache.settled("exp", PARAMS, 0) and not cache.holds("exp", PARAMS, 0)
    with pytest.raises(kb.run.cache.ComputationFailed):
        cache.read("exp", PARAMS, 0)
    now[0] += 601
    assert not cache.settled("exp", PARAMS, 0) and cache.read("exp", PARAMS, 0) is None
    entry, cached = cache.get_or_compute("exp", PARAMS, 0, lambda: ({"v": 1}, 0.1))
    assert not cached and entry.values == {"v": 1}


def test_without_waiting_a_key_being_computed_raises_in_progress(tmp_path):
    cache, started, finish = Cache(tmp_path, ENV), threading.Event(), threading.Event()

    def slow():
        started.set()
        assert finish.wait(30)
        return {"v": 1}, 0.1

    first = threading.Thread(target=cache.get_or_compute, args=("exp", PARAMS, 0, slow))
    first.start()
    try:
        assert started.wait(30)
        with pytest.raises(kb.run.cache.InProgress):
            cache.get_or_compute("exp", PARAMS, 0, must_not_compute, wait=False)
    finally:
        finish.set()
        first.join(30)
    assert cache.get_or_compute("exp", PARAMS, 0, must_not_compute, wait=False)[1]


def test_results_that_cannot_be_written_are_served_and_kept_in_memory(tmp_path, monkeypatch,
                                                                      caplog):
    def no_space(path, write):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(kb.run.cache, "write_atomically", no_space)
    cache, count_dir = Cache(tmp_path, ENV), tmp_path / "count"
    entry, cached = cache.get_or_compute("exp", PARAMS, 0, counted_compute(count_dir, {"v": 2}))
    assert entry.values == {"v": 2} and not cached
    assert cache.get_or_compute("exp", PARAMS, 0, must_not_compute)[0].values == {"v": 2}
    assert cache.holds("exp", PARAMS, 0) and entry_files(tmp_path) == []
    cache.get_or_compute("exp", PARAMS, 1, counted_compute(count_dir, {"v": 3}))
    warnings = [r for r in caplog.records if "cannot write results" in r.getMessage()]
    assert len(warnings) == 1  # said once, not on every write
    assert cache.get_or_render("cd" * 16, "svg", lambda: b"<svg/>") == b"<svg/>"


def test_without_lock_files_a_lock_per_key_in_the_process_stands_in(tmp_path, monkeypatch):
    class NoLockFiles:
        def __init__(self, path):
            raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(kb.run.cache, "FileLock", NoLockFiles)
    cache, count_dir = Cache(tmp_path, ENV), tmp_path / "count"
    outcomes = []
    threads = [threading.Thread(target=lambda: outcomes.append(cache.get_or_compute(
        "exp", PARAMS, 0, counted_compute(count_dir, {"v": 1}, delay=0.2)))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert computations(count_dir) == 1 and len(outcomes) == 3
    assert cache.prune() is None  # no lock, no pruning: quietly


def test_a_damaged_figure_is_rendered_and_written_again(tmp_path):
    cache, key = Cache(tmp_path, ENV), "ef" * 16
    whole = b"\x89PNG\r\n\x1a\n...IEND\xaeB`\x82"
    valid = lambda data: kb.run.figures.looks_whole("png", data)  # noqa: E731
    cache.get_or_render(key, "png", lambda: whole, valid)
    path = cache.figure_path(key, "png")
    path.write_bytes(whole[:6])  # cut short
    assert cache.get_or_render(key, "png", lambda: whole, valid) == whole
    assert path.read_bytes() == whole


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_prune_evicts_the_least_recently_used_but_never_a_protected_key(tmp_path):
    protected: set[str] = set()
    cache = Cache(tmp_path, ENV, max_bytes=10**9, protected=lambda: protected)
    big = {"v": np.zeros(50_000)}  # about 400 kB each
    keys = []
    for seed in range(6):
        entry, _ = cache.get_or_compute("exp", PARAMS, seed, lambda: (dict(big), 0.1))
        keys.append(entry.key)
        path = next(p for p in entry_files(tmp_path) if p.stem == entry.key)
        _age(path, 1000 - seed * 100)  # seed 0 the least recently used
    cache.get_or_compute("exp", PARAMS, 5, must_not_compute)  # used again: the most recent
    protected.add(keys[0])
    size = sum(p.stat().st_size for p in entry_files(tmp_path))
    cache.max_bytes = size // 2
    pruned = cache.prune()
    left = {p.stem for p in entry_files(tmp_path)}
    assert pruned.removed == len(keys) - len(left) > 0 and pruned.size == size
    assert keys[0] in left and keys[5] in left and keys[1] not in left
    assert sum(p.stat().st_size for p in entry_files(tmp_path)) <= cache.max_bytes * 0.9


def test_writes_keep_the_cache_under_its_bound(tmp_path):
    cache = Cache(tmp_path, ENV, max_bytes=2_000_000)
    for seed in range(12):
        cache.get_or_compute("exp", PARAMS, seed, lambda: ({"v": np.zeros(50_000)}, 0.1))
    assert sum(p.stat().st_size for p in entry_files(tmp_path)) <= 2_000_000


def test_prune_removes_leftovers_of_killed_writers_and_expired_failures(tmp_path):
    cache = Cache(tmp_path, ENV, failure_ttl=60)
    cache.get_or_compute("exp", PARAMS, 0, lambda: ({"v": 1}, 0.1))
    folder = entry_files(tmp_path)[0].parent
    old, young = folder / ".x.npz.old.tmp", folder / ".x.npz.young.tmp"
    old.write_bytes(b"half")
    young.write_bytes(b"half")  # perhaps still being written
    _age(old, 3600)
    with pytest.raises(kb.run.cache.ComputationFailed):
        cache.get_or_compute("exp", PARAMS, 1, lambda: (_ for _ in ()).throw(
            kb.run.cache.ComputationFailed("died")))
    record = next((tmp_path / "failures").rglob("*.json"))
    _age(record, 3600)
    assert cache.prune().leftovers == 2
    assert not old.exists() and young.exists() and not record.exists()
    assert len(entry_files(tmp_path)) == 1
