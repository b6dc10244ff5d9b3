"""Housekeeping: one index build for the workers starting together, leftovers of killed
builds and writes removed at start, and a size bound that never evicts the answers' own
results."""
from __future__ import annotations

import os
import threading
import time

from kb.search.index import SearchIndex
from kb.web.app import create_app
from kb.web.site import KeptIndex


def test_workers_starting_together_build_the_index_once(settings, monkeypatch):
    builds, build = [], SearchIndex.build

    def counted(index, *args, **kwargs):
        builds.append(1)
        time.sleep(0.2)  # long enough for the other worker to ask meanwhile
        return build(index, *args, **kwargs)

    monkeypatch.setattr(SearchIndex, "build", counted)
    lock = settings.data_dir / "index-refresh.lock"
    settings.data_dir.mkdir(parents=True)
    workers = [KeptIndex(SearchIndex(settings.index_dir), settings.answers_dir, lock_path=lock)
               for _ in range(3)]
    threads = [threading.Thread(target=kept.ensure_current, kwargs={"force": True})
               for kept in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert builds == [1] and workers[2].index.exists()


def _age(path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then), follow_symlinks=False)


def test_leftovers_of_killed_builds_and_writes_are_removed_at_start(app, client, settings):
    assert client.get("/api/search?q=noise").status_code == 200  # an index to keep
    versions = settings.index_dir.with_name("index.versions")
    partial, young = versions / "20240101T000000-1-dead", versions / "20240101T000000-2-busy"
    for folder in (partial, young):
        folder.mkdir()
        (folder / "_MAIN_1.toc").write_text("half")
    link = settings.index_dir.with_name(".index.dead.link")
    link.symlink_to(partial)
    leftover = next(settings.cache_dir.rglob("*.npz")).with_name(".x.npz.abc.tmp")
    leftover.write_bytes(b"half")
    for path in (partial, link, leftover):
        _age(path, 3600)

    app.extensions["kb"].housekeeping()
    assert not partial.exists() and not link.is_symlink() and not leftover.exists()
    assert young.exists()  # perhaps a build still running elsewhere: left alone
    assert client.get("/api/search?q=noise").status_code == 200


def test_the_size_bound_evicts_reruns_never_the_answers_own_results(settings):
    app = create_app(settings.replace(cache_size=1), TESTING=True)
    site = app.extensions["kb"]
    site.warm(samples=False, figures=False)
    site.cache.max_bytes = 100_000  # below KB_CACHE_SIZE's least (1 MiB), to test it quickly
    own = site.protected_keys()
    noise_own = site.cache.key("test_web_noise", {"n": 50, "scale": 1.0, "kind": "normal"}, 0)
    assert noise_own in own
    client = app.test_client()
    for n in range(600, 1000, 10):  # 40 reruns of about 8 kB each
        assert client.get(f"/api/answers/noise?d.n={n}").status_code == 200
    # A job's thread prunes right after writing its result, which the request may already
    # have read: the bound holds once the last prune is done.
    deadline = time.monotonic() + 10
    while True:
        results = {p.stem: p.stat().st_size for p in settings.cache_dir.rglob("*.npz")}
        if sum(results.values()) <= 100_000 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert noise_own in results and len(results) < 40
    assert sum(results.values()) <= 100_000
    assert client.get("/api/answers/noise").get_json()["claims"][0]["holds"] is True


def test_a_starting_server_reads_the_word_list_before_any_search(app):
    """The first search with a typo must not wait for "did you mean"'s English word list."""
    from kb.search import index as search_index
    from kb.web.warm import _warm

    search_index._english.cache_clear()
    stop = threading.Event()
    stop.set()  # no demonstrations: only what comes before them
    _warm(app.extensions["kb"], stop)
    assert search_index._english.cache_info().currsize == 1
    assert search_index._is_english("forgot")
