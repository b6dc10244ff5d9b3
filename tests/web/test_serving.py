"""The two ways to run the site, as real processes on loopback: `kb serve` and gunicorn."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from kb.config import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def server_header(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.headers["Server"]


@pytest.fixture
def run_server(tmp_path: Path):
    """``run_server(command, env)``: start it, wait (bounded) for /healthz, yield its base URL."""
    started: list[tuple[subprocess.Popen, object]] = []

    def run(command: list[str], port: int, env: dict[str, str]) -> str:
        log = open(tmp_path / f"server-{len(started)}.log", "w")
        process = subprocess.Popen(command, env={**os.environ, **env}, stdout=log,
                                   stderr=subprocess.STDOUT)
        started.append((process, log))
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"{command[:3]} exited: {(tmp_path / log.name).read_text()}")
            try:
                if get(f"{base}/healthz")[0] == 200:
                    return base
            except OSError:
                time.sleep(0.1)
        pytest.fail(f"{command[:3]} did not answer within 60 s")

    yield run
    for process, log in started:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_kb_serve_builds_the_index_and_serves(run_server, settings: Settings):
    port = free_port()
    kb = Path(sys.executable).with_name("kb")
    base = run_server([str(kb), "--answers", str(settings.answers_dir), "--data",
                       str(settings.data_dir), "serve", "--port", str(port)], port, {})
    assert settings.index_dir.exists()  # built at start, before any search
    status, html = get(f"{base}/a/plain")
    assert status == 200 and "A plain answer without demonstrations" in html
    assert get(f"{base}/a/sample-noise")[0] == 200  # followed the 301
    assert get(f"{base}/a/nothing-here")[0] == 404
    assert server_header(f"{base}/healthz") == "kb"  # no werkzeug or Python version


def test_gunicorn_serves_the_wsgi_app_from_environment_settings(run_server, settings: Settings):
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "-c", "python:kb.gunicorn_conf", "-w", "2",
               "--threads", "2", "-b", f"127.0.0.1:{port}", "kb.wsgi:app"]
    base = run_server(command, port, {"KB_ANSWERS": str(settings.answers_dir),
                                      "KB_DATA": str(settings.data_dir),
                                      "KB_BASE_URL": "https://kb.example.org"})
    assert settings.index_dir.exists()  # built as the workers started
    status, html = get(f"{base}/a/plain")
    assert status == 200 and 'href="https://kb.example.org/a/plain"' in html
    status, body = get(f"{base}/api/search?q=plain+words")
    assert status == 200 and '"slug":"plain"' in body
    assert server_header(f"{base}/healthz") == "gunicorn"  # no version
    versions = settings.index_dir.with_name("index.versions")
    assert len(list(versions.iterdir())) == 1  # the two workers built it once
