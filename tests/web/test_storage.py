"""A data folder that turns read-only or fills up degrades the service, never fails it: pages
and reruns are served (results that cannot be stored are kept in memory), search keeps its
last index after an answer changes, and the start says one line when the folder is unusable.

The folder is a small tmpfs where this machine lets the tests mount one; elsewhere the same
trouble is injected into the writers (the cache's files and locks, the index build).
"""
from __future__ import annotations

import errno
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

import kb.run.cache
import kb.web.site
from faults import free_port, get, kb_command, environment, remount, tmpfs, fill, wait_until
from kb.cli import main
from kb.config import Settings
from kb.search.index import SearchIndex
from kb.web.app import create_app


class Storage:
    """The data folder and the trouble it can be put in: ``read_only()`` or ``full()``."""

    def __init__(self, folder: Path, mounted: bool, monkeypatch):
        self.folder, self.mounted, self._monkeypatch = folder, mounted, monkeypatch

    def read_only(self) -> None:
        if self.mounted:
            remount(self.folder, "ro")
        else:
            self._inject(errno.EROFS, locks=True)

    def full(self) -> None:
        if self.mounted:
            fill(self.folder)
        else:
            self._inject(errno.ENOSPC, locks=False)

    def _inject(self, code: int, locks: bool) -> None:
        def fail(*args, **kwargs):
            raise OSError(code, os.strerror(code))

        self._monkeypatch.setattr(kb.run.cache, "write_atomically", fail)
        self._monkeypatch.setattr(SearchIndex, "build", fail)
        if locks:
            self._monkeypatch.setattr(kb.run.cache, "FileLock", fail)
            self._monkeypatch.setattr(kb.web.site, "FileLock", fail)


@pytest.fixture
def storage(tmp_path: Path, monkeypatch):
    folder = tmp_path / "data"
    try:
        with tmpfs(folder, size="8m"):
            yield Storage(folder, True, monkeypatch)
    except OSError as exc:
        if "cannot mount" not in str(exc):
            raise
        folder.mkdir(exist_ok=True)
        yield Storage(folder, False, monkeypatch)


@pytest.fixture
def served(answers_dir: Path, storage: Storage):
    """An app over ``storage``, warmed (own settings computed, index built) while writable."""
    settings = Settings(answers_dir=answers_dir, data_dir=storage.folder, reload_interval=0.0,
                        index_interval=0.0)
    app = create_app(settings, TESTING=True)
    app.extensions["kb"].warm(samples=False, figures=False)
    client = app.test_client()
    assert client.get("/api/search?q=noise").status_code == 200  # the index is built
    return app, client


def _rename_plain(answers_dir: Path) -> None:
    path = answers_dir / "plain.md"
    path.write_text(path.read_text().replace("A plain answer without demonstrations",
                                             "Zebra stripes"))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))


@pytest.mark.parametrize("trouble", ["read_only", "full"])
def test_pages_search_and_reruns_keep_being_served(served, storage, answers_dir, trouble,
                                                   caplog):
    app, client = served
    getattr(storage, trouble)()
    caplog.set_level(logging.INFO)

    assert "The mean of the samples is" in client.get("/a/noise").get_data(as_text=True)
    # A rerun computes, cannot store, and serves what it computed; then from memory.
    rerun = client.get("/a/noise?seed=7")
    assert rerun.status_code == 200 and "is being computed" not in rerun.get_data(as_text=True)
    assert client.get("/a/noise/figures/samples-plot.png?seed=7").status_code == 200
    assert app.extensions["kb"].cache.holds("test_web_noise", {"n": 50, "scale": 1.0,
                                                               "kind": "normal"}, 7)
    # An answer changes: the index cannot be rebuilt, the current one is still searched.
    _rename_plain(answers_dir)
    for _ in range(2):
        found = client.get("/api/search?q=plain+words")
        assert found.status_code == 200
        assert [hit["slug"] for hit in found.get_json()["results"]][:1] == ["plain"]
    assert "Zebra stripes" in client.get("/a/plain").get_data(as_text=True)
    warnings = [r.getMessage() for r in caplog.records if "could not be built" in r.getMessage()]
    assert len(warnings) == 1 and "keeping the current index" in warnings[0]
    assert client.get("/a/nothing-here").status_code == 404


def test_an_empty_read_only_data_folder_serves_computing_pages_and_503_for_search(
        answers_dir, storage):
    storage.read_only()
    settings = Settings(answers_dir=answers_dir, data_dir=storage.folder, reload_interval=0.0,
                        index_interval=0.0)
    app = create_app(settings, TESTING=True)  # warns, does not fail
    client = app.test_client()
    app.extensions["kb"].index.ensure_current(force=True)  # as the servers do at start
    searched = client.get("/api/search?q=noise")
    assert searched.status_code == 503 and searched.headers["Retry-After"]
    assert "search index cannot be read or built" in searched.get_json()["error"]
    assert client.get("/search?q=noise").status_code == 503
    assert client.get("/").status_code == 200
    assert client.get("/a/nothing-here").status_code == 404  # suggestions without search

    def computed():
        app.extensions["kb"].outcomes.clear()
        app.extensions["kb"].pages.clear()
        text = client.get("/a/noise").get_data(as_text=True)
        return "is being computed" not in text and "The mean of the samples is" in text

    wait_until(computed, 60, "the sampler's results, kept in memory, on the page")


def test_kb_serve_on_an_empty_read_only_data_folder_starts_and_serves(answers_dir, storage,
                                                                      tmp_path):
    storage.read_only()
    if not storage.mounted:
        pytest.skip("a read-only folder for another process needs a tmpfs mount here")
    port = free_port()
    log = open(tmp_path / "serve.log", "w")
    server = subprocess.Popen(
        kb_command("--answers", str(answers_dir), "--data", str(storage.folder), "serve",
                   "--port", str(port)), env=environment(), stdout=log, stderr=subprocess.STDOUT)
    try:
        def healthy():
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                return get(f"http://127.0.0.1:{port}/healthz", timeout=2)[0] == 200
            except OSError:
                return False

        wait_until(healthy, 60, "kb serve on a read-only data folder")
        assert get(f"http://127.0.0.1:{port}/a/plain")[0] == 200
        assert get(f"http://127.0.0.1:{port}/api/search?q=noise")[0] == 503
    finally:
        server.terminate()
        server.wait(30)
        log.close()
    assert "Traceback" not in (tmp_path / "serve.log").read_text()


@pytest.mark.parametrize("below_a_file, message", [(False, "is not a folder"),
                                                   (True, "cannot be made")])
def test_an_unusable_data_folder_stops_kb_serve_with_one_line(answers_dir, tmp_path,
                                                              monkeypatch, capsys,
                                                              below_a_file, message):
    (tmp_path / "file").write_text("not a folder")
    data = tmp_path / "file" / "data" if below_a_file else tmp_path / "file"
    monkeypatch.setenv("KB_ANSWERS", str(answers_dir))
    monkeypatch.setenv("KB_DATA", str(data))
    assert main(["serve", "--port", str(free_port())]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"Error: the data folder {data} (KB_DATA) {message}"
                     + (": Not a directory" if below_a_file else "")]


def test_gunicorn_with_an_unusable_data_folder_stops_with_one_line(answers_dir, tmp_path):
    data = tmp_path / "data"
    data.write_text("not a folder")
    done = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "python:kb.gunicorn_conf", "-w", "2",
         "-b", f"127.0.0.1:{free_port()}", "faults_wsgi:app"],
        env=environment(KB_ANSWERS=str(answers_dir), KB_DATA=str(data)),
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 4
    ours = [line for line in done.stderr.splitlines() if "[INFO]" not in line]
    assert ours == [f"kb: the data folder {data} (KB_DATA) is not a folder"], done.stderr
