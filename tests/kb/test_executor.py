"""The executor: results equal to an in-process run, seeds and parameter overrides, the cache,
and failures and timeouts reported with the answer's file:line while the rest still runs."""
from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from engine.catalog import get_experiment
from engine.registry import Param, ParameterError, experiment
from kb.run.cache import Cache
from kb.run.executor import Computing, Executor, Limits
from kb.model import Answer, Demonstration, Location


@experiment("test_executor_noise",
            params={"n": Param(int, 8, 1, 1000), "scale": Param(float, 1.0, 0.0, 10.0)})
def noise(rng, n, scale):
    x = scale * rng.normal(size=n)
    return {"x": x, "mean": float(x.mean()), "n": n}


@experiment("test_executor_fails")
def fails(rng):
    raise ValueError("the batch is empty")


@experiment("test_executor_spins")
def spins(rng):
    while True:  # numpy work that no signal or thread could interrupt cleanly
        rng.normal(size=10_000).sum()


@experiment("test_executor_exits")
def exits(rng):
    os._exit(3)


@experiment("test_executor_returns_list")
def returns_list(rng):
    return {"xs": [1, 2]}


@experiment("test_executor_counts", params={"count_dir": Param(str, "")})
def counts(rng, count_dir):
    Path(count_dir, uuid.uuid4().hex).touch()
    return {"draw": int(rng.integers(1_000_000))}


@experiment("test_executor_counts_then_fails", params={"count_dir": Param(str, "")})
def counts_then_fails(rng, count_dir):
    Path(count_dir, uuid.uuid4().hex).touch()
    raise ValueError("the batch is empty")


@experiment("test_executor_descriptors")
def descriptors(rng):
    """What the child holds open: its descriptors and how many are sockets."""
    fds = [int(name) for name in os.listdir("/proc/self/fd")]
    sockets = 0
    for fd in fds:
        try:
            sockets += stat.S_ISSOCK(os.fstat(fd).st_mode)
        except OSError:  # the listing's own descriptor, closed by now
            pass
    return {"above_stderr": sum(1 for fd in fds if fd > 2), "sockets": sockets}


@experiment("test_executor_hog", params={"mib": Param(int, 1, 1, 1 << 20)})
def hog(rng, mib):
    return {"total": float(np.ones(mib * 2**20 // 8).sum())}


@experiment("test_executor_waits", params={"flag_dir": Param(str, "")})
def waits(rng, flag_dir):
    """Says it started, then waits until told to finish (a file appears)."""
    Path(flag_dir, "started").touch()
    while not Path(flag_dir, "finish").exists():
        time.sleep(0.01)
    return {"done": True}


ANSWER_FILE = "answers/test-answer.md"


def make_demo(name, experiment_name, params=None, seed=0, line=10):
    params = dict(params or {})
    return Demonstration(name, experiment_name, params, params, seed, (),
                         Location(ANSWER_FILE, line))


def make_answer(*demos):
    return Answer(
        slug="test-answer", title="T", question="Q", thread="Th", tags=[], aliases=[],
        related=[], summary="S", body="", body_line=1, demonstrations=list(demos), claims=[],
        inline_values=[], path=Path(ANSWER_FILE),
    )


@pytest.fixture
def cache(tmp_path):
    return Cache(tmp_path / "cache")


def computations(count_dir: Path) -> int:
    return len(list(count_dir.iterdir()))


def test_result_equals_an_in_process_run_and_is_then_read_from_the_cache(cache):
    demo = make_demo("noise", "test_executor_noise", {"n": 16, "scale": 2.0}, seed=3)
    expected = get_experiment("test_executor_noise").run({"n": 16, "scale": 2.0}, 3)

    first = Executor(cache).run_demo(demo)
    assert first.error is None and not first.cached
    assert first.params == {"n": 16, "scale": 2.0} and first.seed == 3
    assert first.values["x"].tobytes() == expected["x"].tobytes()
    assert first.values["mean"] == expected["mean"] and first.values["n"] == 16
    assert first.seconds > 0 and first.key == cache.key("test_executor_noise", first.params, 3)

    second = Executor(cache).run_demo(demo)
    assert second.cached and second.key == first.key
    assert second.seconds == first.seconds  # the original compute time
    assert second.values["x"].tobytes() == expected["x"].tobytes()


def test_result_arrays_are_read_only(cache):
    result = Executor(cache).run_demo(make_demo("noise", "test_executor_noise"))
    with pytest.raises(ValueError, match="read-only"):
        result.values["x"][0] = 0.0


def test_seed_defaults_to_the_demonstrations_own(cache):
    executor = Executor(cache)
    own = executor.run_demo(make_demo("noise", "test_executor_noise", seed=5))
    explicit = executor.run_demo(make_demo("noise", "test_executor_noise", seed=0), seed=5)
    other = executor.run_demo(make_demo("noise", "test_executor_noise", seed=5), seed=6)
    assert own.seed == explicit.seed == 5 and other.seed == 6
    assert own.values["x"].tobytes() == explicit.values["x"].tobytes()
    assert own.values["x"].tobytes() != other.values["x"].tobytes()


@pytest.mark.parametrize("seed", [-1, 1.5, True, "3"])
def test_a_bad_seed_is_refused(cache, seed):
    with pytest.raises(ParameterError, match=r"seed must be an integer in \[0, 4294967295\]"):
        Executor(cache).run_demo(make_demo("noise", "test_executor_noise"), seed=seed)


def test_params_override_the_demonstrations_own_after_validation(cache):
    demo = make_demo("noise", "test_executor_noise", {"n": 16, "scale": 2.0})
    executor = Executor(cache)
    own = executor.run_demo(demo)
    overridden = executor.run_demo(demo, params={"n": "4"})  # as from a URL
    assert overridden.params == {"n": 4, "scale": 2.0}
    assert overridden.values["x"].shape == (4,) and overridden.key != own.key

    with pytest.raises(ParameterError, match=r"'n' = 5000 is outside its range \[1, 1000\]"):
        executor.run_demo(demo, params={"n": 5000})
    with pytest.raises(ParameterError, match="has no parameter 'depth'"):
        executor.run_demo(demo, params={"depth": 3})


def test_failures_and_timeouts_are_reported_with_file_line_and_the_rest_still_runs(cache):
    answer = make_answer(
        make_demo("broken", "test_executor_fails", line=12),
        make_demo("stuck", "test_executor_spins", line=20),
        make_demo("fine", "test_executor_noise", line=30),
    )
    started = time.monotonic()
    run = Executor(cache, timeout=0.5).run(answer)
    assert time.monotonic() - started < 5  # the stuck computation was killed

    broken, stuck, fine = (run.results[name] for name in ("broken", "stuck", "fine"))
    assert broken.error == (
        f"{ANSWER_FILE}:12: demonstration 'broken' failed: ValueError: the batch is empty"
    )
    assert stuck.error == f"{ANSWER_FILE}:20: demonstration 'stuck' timed out after 0.5 s"
    assert broken.values is None and stuck.values is None
    assert fine.error is None and fine.values["n"] == 8
    assert run.seed is None and list(run.results) == ["broken", "stuck", "fine"]
    # Failures are no entries; they are recorded apart, for a while (see below).
    assert cache.lookup("test_executor_fails", {}, 0).status == "miss"


def test_a_failure_is_recorded_so_that_no_one_computes_it_again_for_a_while(tmp_path):
    count_dir = tmp_path / "count"
    count_dir.mkdir()
    demo = make_demo("empty", "test_executor_counts_then_fails", {"count_dir": str(count_dir)},
                     line=6)
    expected = f"{ANSWER_FILE}:6: demonstration 'empty' failed: ValueError: the batch is empty"
    first = Executor(Cache(tmp_path / "cache")).run_demo(demo)
    # Another process's executor over the same folder reads the record.
    again = Executor(Cache(tmp_path / "cache")).run_demo(demo)
    assert first.error == again.error == expected and computations(count_dir) == 1
    assert Executor(Cache(tmp_path / "cache")).to_compute(make_answer(demo)) == []
    # fresh (kb check) computes anyway; without a record (failure_ttl 0) every run computes.
    assert Executor(Cache(tmp_path / "cache"), fresh=True).run_demo(demo).error == expected
    assert computations(count_dir) == 2
    unrecorded = Cache(tmp_path / "other", failure_ttl=0)
    Executor(unrecorded).run_demo(demo)
    Executor(unrecorded).run_demo(demo)
    assert computations(count_dir) == 4


def test_a_reader_computes_nothing_and_says_what_is_being_computed(cache):
    demo = make_demo("noise", "test_executor_noise", line=3)
    reader = Executor(cache).but(compute=False)
    missing = reader.run_demo(demo)
    assert isinstance(missing, Computing) and missing.values is None
    assert missing.error == f"{ANSWER_FILE}:3: demonstration 'noise' is being computed; it is " \
                            "shown as soon as it is done"
    assert not cache.holds("test_executor_noise", missing.params, 0)
    computed = Executor(cache).run_demo(demo)
    assert reader.run_demo(demo).values["x"].tobytes() == computed.values["x"].tobytes()
    assert Executor(None, compute=False).run_demo(demo).values is None


def test_without_waiting_a_computation_of_someone_else_shows_as_computing(cache, tmp_path):
    demo = make_demo("wait", "test_executor_waits", {"flag_dir": str(tmp_path)})
    results = []
    first = threading.Thread(target=lambda: results.append(Executor(cache).run_demo(demo)))
    first.start()
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "started").exists():
            assert time.monotonic() < deadline, "the first computation never started"
            time.sleep(0.01)
        impatient = Executor(cache, wait=False).run_demo(demo)
        assert isinstance(impatient, Computing)
    finally:
        (tmp_path / "finish").touch()
        first.join(30)
    assert results[0].values == {"done": True}
    assert Executor(cache, wait=False).run_demo(demo).values == {"done": True}


# --- the child: nothing of its parent, dies with it, limits -------------------------------


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc (Linux)")
def test_the_child_holds_none_of_its_parents_descriptors_but_its_result_pipe(tmp_path):
    with socket.socket() as listening, open(tmp_path / "held", "w"):
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        result = Executor(None).run_demo(make_demo("fds", "test_executor_descriptors"))
    assert result.error is None
    assert result.values == {"above_stderr": 2, "sockets": 0}  # the pipe and the listing


CHILD_OF_A_DOOMED_PARENT = """
import sys, time
from pathlib import Path
from engine.registry import Param, experiment
from kb.model import Demonstration, Location
from kb.run.executor import Executor

@experiment("test_executor_orphan", params={"pid_dir": Param(str, "")})
def orphan(rng, pid_dir):
    import os
    Path(pid_dir, str(os.getpid())).touch()
    time.sleep(300)
    return {}

demo = Demonstration("d", "test_executor_orphan", {"pid_dir": sys.argv[1]},
                     {"pid_dir": sys.argv[1]}, 0, (), Location("x.md", 1))
Executor(None, timeout=600).run_demo(demo)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal: Linux")
def test_a_computation_dies_with_the_process_that_started_it(tmp_path):
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    parent = subprocess.Popen([sys.executable, "-c", CHILD_OF_A_DOOMED_PARENT, str(pid_dir)])
    try:
        deadline = time.monotonic() + 60
        while not list(pid_dir.iterdir()):
            assert parent.poll() is None and time.monotonic() < deadline, "no computation"
            time.sleep(0.05)
        child = int(next(pid_dir.iterdir()).name)
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 10
        while process_alive(child):
            assert time.monotonic() < deadline, "the computation outlived its parent"
            time.sleep(0.05)
    finally:
        parent.kill()
        parent.wait()


def process_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat_file:
            return stat_file.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (Linux)")
def test_a_computation_is_stopped_at_its_memory_limit_with_a_clear_message(cache):
    demo = make_demo("hog", "test_executor_hog", {"mib": 2048}, line=8)
    result = Executor(cache, limits=Limits(memory_mib=256)).run_demo(demo)
    assert result.error.startswith(
        f"{ANSWER_FILE}:8: demonstration 'hog' stopped at its memory limit of 256 MiB "
        "(MemoryError: Unable to allocate 2.00 GiB")
    small = make_demo("hog", "test_executor_hog", {"mib": 16})
    assert Executor(cache, limits=Limits(memory_mib=256)).run_demo(small).error is None


def test_a_computation_is_stopped_at_its_cpu_time_limit(cache):
    result = Executor(cache, timeout=120, limits=Limits(cpu_seconds=1)).run_demo(
        make_demo("stuck", "test_executor_spins", line=20))
    assert result.error == (f"{ANSWER_FILE}:20: demonstration 'stuck' used up its CPU time "
                            "limit of 1 s")


def test_a_computation_that_dies_is_reported(cache):
    result = Executor(cache).run_demo(make_demo("gone", "test_executor_exits", line=7))
    assert result.error == (
        f"{ANSWER_FILE}:7: demonstration 'gone' ended without a result (exit code 3)"
    )


def test_values_the_cache_cannot_store_are_reported_by_field(cache):
    result = Executor(cache).run_demo(make_demo("listy", "test_executor_returns_list", line=9))
    assert result.error.startswith(f"{ANSWER_FILE}:9: demonstration 'listy' failed: ValueError")
    assert "field 'xs' as list" in result.error


def test_an_unknown_experiment_is_reported_not_raised(cache):
    result = Executor(cache).run_demo(make_demo("ghost", "test_executor_no_such", line=4))
    assert result.error.startswith(f"{ANSWER_FILE}:4: demonstration 'ghost' cannot run: ")
    assert "unknown experiment 'test_executor_no_such'" in result.error


def test_fresh_recomputes_while_the_default_reads_the_cache(cache, tmp_path):
    count_dir = tmp_path / "count"
    count_dir.mkdir()
    demo = make_demo("counted", "test_executor_counts", {"count_dir": str(count_dir)})

    first = Executor(cache).run_demo(demo)
    assert Executor(cache).run_demo(demo).cached
    assert computations(count_dir) == 1

    refreshed = Executor(cache, fresh=True).run_demo(demo)
    assert not refreshed.cached and computations(count_dir) == 2
    assert refreshed.values == first.values  # same seed, same numbers


def test_without_a_cache_every_run_computes(tmp_path):
    count_dir = tmp_path / "count"
    count_dir.mkdir()
    demo = make_demo("counted", "test_executor_counts", {"count_dir": str(count_dir)})
    results = [Executor(None).run_demo(demo) for _ in range(2)]
    assert computations(count_dir) == 2
    assert all(r.key is None and not r.cached and r.error is None for r in results)


def test_run_applies_one_seed_and_per_demonstration_overrides(cache):
    answer = make_answer(make_demo("a", "test_executor_noise", seed=1),
                         make_demo("b", "test_executor_noise", seed=2))
    run = Executor(cache).run(answer, seed=7, overrides={"b": {"n": 3}})
    assert run.seed == 7 and {r.seed for r in run.results.values()} == {7}
    assert run.results["a"].params["n"] == 8 and run.results["b"].params["n"] == 3

    with pytest.raises(ParameterError, match="has no demonstration 'c'"):
        Executor(cache).run(answer, overrides={"c": {"n": 3}})


def test_timeout_must_be_positive():
    with pytest.raises(ValueError, match="timeout must be positive"):
        Executor(None, timeout=0)


def test_results_hold_numpy_values_unchanged(cache):
    result = Executor(cache).run_demo(make_demo("noise", "test_executor_noise", {"n": 3}))
    assert isinstance(result.values["x"], np.ndarray) and result.values["x"].dtype == np.float64
    assert type(result.values["mean"]) is float and type(result.values["n"]) is int


def test_to_compute_names_the_demonstrations_a_run_would_compute(cache):
    answer = make_answer(make_demo("a", "test_executor_noise", {"n": 4}),
                         make_demo("b", "test_executor_noise", {"n": 5}, line=20),
                         make_demo("gone", "test_executor_no_such_experiment", line=30))
    executor = Executor(cache)
    assert executor.to_compute(answer) == ["a", "b"]  # "gone" cannot run: nothing to compute
    executor.run(answer)
    assert executor.to_compute(answer) == []
    assert executor.to_compute(answer, overrides={"b": {"n": 6}}) == ["b"]
    assert executor.to_compute(answer, seed=7) == ["a", "b"]
    assert Executor(cache, fresh=True).to_compute(answer) == ["a", "b"]
    assert Executor(None).to_compute(answer) == ["a", "b"]
    with pytest.raises(ParameterError, match=r"'n' = 0 is outside its range \[1, 1000\]"):
        executor.to_compute(answer, overrides={"a": {"n": 0}})
