"""Fault injection on real processes: servers and `kb check` killed in the middle of a
computation leave nothing behind and restart at once; a computation that never returns,
viewed by many clients, delays no other page; one that eats memory stops at its limit.

Deadlines here are generous bounds on "it happens", not speed targets, except where the
point is that something is immediate (the port of a killed server is free within 2 s).
"""
from __future__ import annotations

import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import pytest

import kb.run.executor
from faults import (alive, environment, free_port, get, gunicorn_command, kb_command,
                    pids_in, port_is_free, wait_until, write_answer)
from kb.web.app import create_app

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").exists(),
                                reason="watches processes through /proc (Linux)")


@pytest.fixture
def answers(tmp_path: Path) -> Path:
    folder = tmp_path / "answers"
    write_answer(folder, "slow", "test_fault_sleep")
    write_answer(folder, "loop", "test_fault_loop")
    (folder / "plain.md").write_text(
        write_answer(folder, "plain", "test_fault_sleep").read_text()
        .split("```demo")[0])  # words only: a page that never computes
    return folder


def in_background(url: str) -> None:
    """GET ``url`` in a daemon thread; whatever happens to it is fine."""
    def fetch():
        try:
            get(url, timeout=600)
        except Exception:
            pass

    threading.Thread(target=fetch, daemon=True).start()


def slow_rerun(base: str, pid_dir: Path) -> str:
    return f"{base}/a/slow?d.seconds=300&d.pid_dir={quote(str(pid_dir))}"


def server_env(answers: Path, tmp_path: Path, **extra: str) -> dict:
    return environment(KB_ANSWERS=str(answers), KB_DATA=str(tmp_path / "data"),
                       KB_DEMO_TIMEOUT="600", KB_DEMO_CPU="600", **extra)


def assert_nothing_left_and_the_port_free(pids: set[int], port: int) -> None:
    # Immediate: the kernel kills what dies with its parent and closes its sockets.
    wait_until(lambda: port_is_free(port), 2, f"port {port} free after the kill")
    wait_until(lambda: not any(alive(pid) for pid in pids), 5,
               f"processes {sorted(p for p in pids if alive(p))} gone")


def test_kb_serve_killed_during_a_computation_restarts_at_once(servers, answers, tmp_path):
    port, pid_dir = free_port(), tmp_path / "pids"
    pid_dir.mkdir()
    env = server_env(answers, tmp_path)
    first = servers.start(kb_command("serve", "--port", str(port)), env, port)
    in_background(slow_rerun(f"http://127.0.0.1:{port}", pid_dir))
    computing = wait_until(lambda: pids_in(pid_dir), 60, "the slow computation started")
    everything = servers.watch(first) | computing
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    assert_nothing_left_and_the_port_free(everything, port)
    servers.start(kb_command("serve", "--port", str(port)), env, port)
    assert get(f"http://127.0.0.1:{port}/a/plain")[0] == 200


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_gunicorn_stopped_during_a_computation_restarts_at_once(servers, answers, tmp_path,
                                                                how):
    port, pid_dir = free_port(), tmp_path / "pids"
    pid_dir.mkdir()
    env = server_env(answers, tmp_path)
    master = servers.start(gunicorn_command(port), env, port)
    in_background(slow_rerun(f"http://127.0.0.1:{port}", pid_dir))
    computing = wait_until(lambda: pids_in(pid_dir), 60, "the slow computation started")
    everything = servers.watch(master) | computing
    assert computing <= everything and len(everything) >= 4  # master, 2 workers, computation
    # SIGTERM: the computation outlasts the graceful timeout (2 s), the master kills the worker.
    master.send_signal(getattr(signal, how))
    master.wait(60)
    assert_nothing_left_and_the_port_free(everything, port)
    servers.start(gunicorn_command(port), env, port)
    assert get(f"http://127.0.0.1:{port}/a/plain")[0] == 200
    assert "Connection in use" not in servers.log(servers.started[-1])


def test_kb_check_killed_leaves_no_worker_or_computation(servers, tmp_path):
    answers, pid_dir = tmp_path / "answers", tmp_path / "pids"
    pid_dir.mkdir()
    for slug, seconds in (("first", 300), ("second", 301)):  # two results, computed at once
        write_answer(answers, slug, "test_fault_sleep",
                     f'{{seconds: {seconds}, pid_dir: "{pid_dir}"}}')
    check = servers.start(kb_command("check", "--jobs", "2", "--timeout", "600"),
                          server_env(answers, tmp_path))
    computing = wait_until(lambda: len(pids_in(pid_dir)) == 2 and pids_in(pid_dir), 120,
                           "both computations started")
    everything = servers.watch(check) | computing
    assert len(everything) >= 5  # kb check, two pool workers, two computations
    check.send_signal(signal.SIGKILL)
    check.wait(30)
    wait_until(lambda: not any(alive(pid) for pid in everything), 10,
               "kb check's workers and computations gone")


def test_a_looping_answer_viewed_by_many_clients_delays_no_other_page(servers, answers,
                                                                     tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    master = servers.start(gunicorn_command(port, workers=2, threads=4),
                           server_env(answers, tmp_path), port)
    stop = threading.Event()
    own: list[int] = []  # statuses of views at the answer's own settings
    reruns: list[int | str] = []  # of views at other seeds: computing the loop (0: waited 5 s)

    def view_the_loop(index: int) -> None:
        rerun = index % 4 == 0
        url = f"{base}/a/loop?seed={index + 1}" if rerun else f"{base}/a/loop"
        while not stop.is_set():
            try:
                (reruns if rerun else own).append(get(url, timeout=5 if rerun else 600)[0])
            except OSError:
                (reruns if rerun else own).append(0)

    with ThreadPoolExecutor(16) as clients:
        for index in range(16):
            clients.submit(view_the_loop, index)
        try:
            wait_until(lambda: len(own) >= 32, 120, "the looping answer viewed")
            for _ in range(10):  # each on a new connection, as a new reader comes
                status, text, _ = get(f"{base}/a/plain", timeout=20)
                assert status == 200 and "The plain answer" in text
                status, text, _ = get(f"{base}/a/loop", timeout=20)
                assert status == 200 and "is being computed" in text
        finally:
            stop.set()
    assert set(own) == {200}, sorted(set(own))
    # Reruns are jobs: each view answers at once with the rerun's state (none waited 5 s).
    assert set(reruns) == {200}, sorted(set(reruns))
    servers.watch(master)


def test_a_memory_hungry_computation_stops_at_the_limit_with_a_clear_message(
        settings, answers_dir, monkeypatch):
    write_answer(answers_dir, "hog", "test_fault_hog")
    app = create_app(settings.replace(demo_memory=256), TESTING=True)
    client = app.test_client()
    body = client.get("/api/answers/hog?d.mib=4096").get_json()
    assert body["rerun"]["state"] == "failed" and body["errors"] == [], body
    assert "it needed more than the 256 MiB of memory a rerun may use" in body["rerun"]["notice"]
    site = app.extensions["kb"]
    failure = site.cache._failure(body_key(site, "hog", {"mib": 4096}))
    assert "stopped at its memory limit of 256 MiB (MemoryError: Unable to allocate 4.00 GiB" \
        in failure.message
    # Recorded: another worker (app) shows it without computing it again.
    monkeypatch.setattr(kb.run.executor, "compute_isolated", lambda *args, **kw: pytest.fail(
        "computed again"))
    other = create_app(settings.replace(demo_memory=256), TESTING=True).test_client()
    assert other.get("/api/answers/hog?d.mib=4096").get_json()["rerun"] == body["rerun"]


def body_key(site, slug: str, params: dict) -> str:
    """The cache key of ``slug``'s one demonstration with ``params`` at its own seed."""
    demo = site.answers.current().get(slug).demonstrations[0]
    return site.cache.key(demo.experiment, {**demo.params, **params}, demo.seed)
