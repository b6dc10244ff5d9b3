"""Helpers of the fault-injection tests: misbehaving experiments, answers that use them, real
servers on loopback, processes to watch, and small file systems that are read-only or full.

Importing this module registers the experiments (names starting "test_fault_"); a server
started with ``PYTHONPATH`` holding this folder imports it first (``serve_command``), so its
computations can be slow, loop or eat memory on purpose.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import numpy as np

from engine.registry import Param, experiment

TESTS = Path(__file__).resolve().parent


@experiment("test_fault_sleep", params={
    "seconds": Param(float, 0.0, 0.0, 600.0, "how long to sleep"),
    "pid_dir": Param(str, "", doc="folder to leave this process's pid in"),
})
def fault_sleep(rng, seconds, pid_dir):
    """Leaves its pid in ``pid_dir`` (if given), sleeps, returns a number."""
    if pid_dir:
        Path(pid_dir, str(os.getpid())).touch()
    time.sleep(seconds)
    return {"value": float(rng.random())}


@experiment("test_fault_loop", params={"pid_dir": Param(str, "", doc="as test_fault_sleep")})
def fault_loop(rng, pid_dir):
    """Never returns: numpy work that no thread can interrupt."""
    if pid_dir:
        Path(pid_dir, str(os.getpid())).touch()
    while True:
        rng.normal(size=10_000).sum()


@experiment("test_fault_hog", params={"mib": Param(int, 1, 1, 1 << 20, "MiB to allocate")})
def fault_hog(rng, mib):
    """Allocates and touches ``mib`` MiB."""
    block = np.ones(mib * 2**20 // 8)
    return {"total": float(block.sum())}


def answer_text(slug: str, experiment_name: str, params: str = "{}") -> str:
    return textwrap.dedent(f"""\
        ---
        slug: {slug}
        title: The {slug} answer
        question: What does the {slug} experiment do?
        thread: Faults
        tags: []
        aliases: []
        related: []
        summary: It shows what the service does when a computation misbehaves.
        ---

        Its demonstration follows.

        ```demo d
        experiment: {experiment_name}
        params: {params}
        seed: 0
        ```
        """)


def write_answer(folder: Path, slug: str, experiment_name: str, params: str = "{}") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{slug}.md"
    path.write_text(answer_text(slug, experiment_name, params), encoding="utf-8")
    return path


# --- processes ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, timeout: float = 10, headers: dict | None = None
        ) -> tuple[int, str, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), dict(exc.headers)


def environment(**variables: str) -> dict[str, str]:
    """This process's environment, with this folder importable and ``variables`` set."""
    path = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **variables}


def kb_command(*args: str) -> list[str]:
    """``kb *args`` in a Python that has imported this module first."""
    code = ("import sys, faults; from kb.cli import main; "
            f"sys.exit(main({list(args)!r}))")
    return [sys.executable, "-c", code]


def gunicorn_command(port: int, workers: int = 2, threads: int = 4) -> list[str]:
    """The README's gunicorn command, serving ``faults_wsgi:app`` (kb.wsgi after this)."""
    return [sys.executable, "-m", "gunicorn", "-c", "python:kb.gunicorn_conf",
            "-w", str(workers), "--threads", str(threads), "--graceful-timeout", "2",
            "-b", f"127.0.0.1:{port}", "faults_wsgi:app"]


class Servers:
    """Starts processes, waits for their /healthz, and kills whatever is left at the end."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.started: list[subprocess.Popen] = []
        self.pids: set[int] = set()

    def start(self, command: list[str], env: dict, port: int | None = None,
              healthy: bool = True) -> subprocess.Popen:
        log = open(self.folder / f"process-{len(self.started)}.log", "w")
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.started.append(process)
        if port is not None and healthy:
            def up():
                assert process.poll() is None, self.log(process)
                try:
                    return get(f"http://127.0.0.1:{port}/healthz", timeout=5)[0] == 200
                except OSError:
                    return False

            wait_until(up, 120, f"{command[:4]} answering /healthz", interval=0.1)
        return process

    def log(self, process: subprocess.Popen) -> str:
        index = self.started.index(process)
        return (self.folder / f"process-{index}.log").read_text()

    def watch(self, process: subprocess.Popen) -> set[int]:
        """The process and its descendants now; they are killed at the end if still there."""
        found = {process.pid, *descendants(process.pid)}
        self.pids |= found
        return found

    def close(self) -> None:
        for process in self.started:
            self.pids |= {process.pid, *descendants(process.pid)} if process.poll() is None \
                else set()
        kill_all(self.pids)
        for process in self.started:
            process.wait(30)


REDIS_SERVER = "/usr/bin/redis-server"


def start_redis(servers: "Servers", folder: Path) -> str:
    """Debian's redis-server on a free loopback port, keeping nothing on disk; its URL."""
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    servers.start([REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--dir", str(folder)], dict(os.environ))

    def answers() -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
        return False

    wait_until(answers, 30, "redis-server answering PING")
    return f"redis://127.0.0.1:{port}/0"


def wait_until(condition, deadline: float, what: str, interval: float = 0.05):
    """Poll ``condition()`` until it is truthy (its value is returned) or ``deadline`` seconds
    pass (AssertionError naming ``what``)."""
    end = time.monotonic() + deadline
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"{what}: not within {deadline:g} s")
        time.sleep(interval)


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (Linux: from /proc/<pid>/task/*/children)."""
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                if child not in found:
                    found.add(child)
                    todo.append(child)
    return found


def pids_in(folder: Path) -> set[int]:
    return {int(p.name) for p in folder.iterdir()} if folder.exists() else set()


def kill_all(pids) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def port_is_free(port: int) -> bool:
    """Whether a new server could listen on ``port`` now (as servers do, with SO_REUSEADDR)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
        except OSError:
            return False
        return True


# --- storage trouble ----------------------------------------------------------------------


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True)


@contextlib.contextmanager
def tmpfs(folder: Path, size: str = "4m") -> Iterator[Path]:
    """A small tmpfs at ``folder``; ``remount(folder, "ro")`` makes it read-only. Raises
    OSError where mounting is not allowed (the caller skips or injects a failure instead), or
    where KB_TEST_NO_MOUNT=1 asks for that path."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.environ.get("KB_TEST_NO_MOUNT") == "1":
        raise OSError("cannot mount a tmpfs here: KB_TEST_NO_MOUNT=1")
    try:
        _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder))
    except (OSError, subprocess.CalledProcessError) as exc:
        raise OSError(f"cannot mount a tmpfs here: {getattr(exc, 'stderr', exc)}") from None
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def remount(folder: Path, mode: str) -> None:
    _mount("-o", f"remount,{mode}", str(folder))


def fill(folder: Path) -> None:
    """Fill the file system of ``folder`` to the last byte."""
    for name, size in (("filler", 65536), ("filler-small", 1)):
        try:
            with open(folder / name, "wb", buffering=0) as out:
                while True:
                    out.write(b"\0" * size)
        except OSError:
            pass
