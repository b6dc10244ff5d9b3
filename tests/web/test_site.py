"""The service's state: answers kept fresh, views normalized, values made once and bounded."""
from __future__ import annotations

import threading
import time

import pytest

from engine.registry import ParameterError
from kb.web.site import AnswerStore, MemoCache, View, parse_view


def test_memo_cache_makes_a_key_once_under_concurrent_requests():
    cache, calls, start = MemoCache(8), [], threading.Barrier(6)

    def make():
        calls.append(1)
        time.sleep(0.05)  # long enough for every thread to ask while it is being made
        return "page"

    def ask():
        start.wait()
        results.append(cache.get_or_make("key", make))

    results: list[str] = []
    threads = [threading.Thread(target=ask) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["page"] * 6 and len(calls) == 1


def test_memo_cache_is_bounded_and_drops_the_least_recently_used():
    cache = MemoCache(2)
    cache.get_or_make("a", lambda: 1)
    cache.get_or_make("b", lambda: 2)
    cache.get_or_make("a", lambda: pytest.fail("a is cached"))
    cache.get_or_make("c", lambda: 3)  # drops b, the least recently used
    assert cache.get_or_make("b", lambda: 20) == 20
    assert cache.get_or_make("c", lambda: pytest.fail("c is cached")) == 3


def test_memo_cache_keeps_values_as_long_as_asked_and_never_failures():
    now = [0.0]
    cache = MemoCache(4, timer=lambda: now[0])
    assert cache.get_or_make("k", lambda: "failed", keep_for=lambda v: 0.0) == "failed"
    assert cache.get_or_make("k", lambda: "retried", keep_for=lambda v: 60.0) == "retried"
    assert cache.get_or_make("k", lambda: pytest.fail("still kept")) == "retried"
    now[0] += 61.0
    assert cache.get_or_make("k", lambda: "again") == "again"
    with pytest.raises(RuntimeError):
        cache.get_or_make("boom", lambda: (_ for _ in ()).throw(RuntimeError("no")))
    assert cache.get_or_make("boom", lambda: "fine") == "fine"


def test_answer_store_looks_at_the_folder_at_most_once_per_interval(answers_dir):
    store = AnswerStore(answers_dir, check_interval=3600.0)
    first = store.current()
    assert [a.slug for a in first.all()] == ["broken", "noise", "plain"]
    (answers_dir / "plain.md").unlink()
    assert store.current() is first  # not looked at again yet
    store.refresh(force=True)
    second = store.current()
    assert second.get("plain") is None and second.generation == first.generation + 1
    assert first.get("plain") is not None  # a snapshot held by a request does not change
    store.refresh(force=True)
    assert store.current() is second  # nothing changed: nothing reparsed


def test_answer_store_resolves_aliases(answers_dir):
    answers = AnswerStore(answers_dir, check_interval=0.0).current()
    assert answers.alias_target("sample-noise") == "noise"
    assert answers.alias_target("noise") is None and answers.get("sample-noise") is None


def test_views_are_normalized_so_equal_views_are_equal(answers_dir):
    noise = AnswerStore(answers_dir).current().get("noise")
    view = parse_view(noise, {"seed": "7", "d.scale": "2.5", "d.n": "50", "utm_source": "x"})
    assert view == View(7, (("d", (("scale", 2.5),)),))  # n=50 is the answer's own
    assert view.query_items() == [("seed", "7"), ("d.scale", "2.5")]
    assert parse_view(noise, {"d.scale": "2.50", "seed": "7"}) == view
    assert parse_view(noise, {"seed": "", "d.n": "50"}) == View()
    assert parse_view(noise, {"seed": "0"}) == View()  # the answer's own seed


def test_view_names_the_bad_parameter(answers_dir):
    noise = AnswerStore(answers_dir).current().get("noise")
    with pytest.raises(ParameterError, match=r"demonstration 'd': parameter 'n' = 1 is outside "
                                             r"its range \[2, 1000\]"):
        parse_view(noise, {"d.n": "1"})
