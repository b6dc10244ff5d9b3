"""New seeds and parameters cost computations; only so many run at once, the rest get a 503.

The answers' own views and views already computed never wait for a slot."""
from __future__ import annotations

import textwrap
import threading
import time

import pytest

from engine.registry import Param, experiment
from kb.web.site import ComputeSlots


@experiment("test_slots_slow", params={"seconds": Param(float, 0.0, 0.0, 5.0, "time taken")})
def slow_experiment(rng, seconds):
    """Sleeps ``seconds``, then draws one number."""
    time.sleep(seconds)
    return {"value": float(rng.random())}


SLOW = """\
---
slug: slow
title: A slow answer
question: What if a demonstration takes its time?
thread: Batch Normalization Intuition
tags: []
aliases: []
related: []
summary: It takes its time with settings other than its own.
---

Its value is {{ s.value:.2f }}.

```demo s
experiment: test_slots_slow
params: {seconds: 0}
seed: 0
```
"""


@pytest.fixture
def slots(app):
    return app.extensions["kb"].compute_slots


def test_views_needing_a_computation_get_503_while_every_slot_is_taken(client, slots):
    assert client.get("/a/noise?d.n=60").status_code == 200  # computed now: cached after
    assert slots.try_take()  # the service's one slot, as a computation would hold it
    try:
        busy = client.get("/a/noise?d.n=61")
        assert busy.status_code == 503
        assert busy.headers["Retry-After"] == "10"
        assert busy.headers["Cache-Control"] == "no-store"
        text = busy.get_data(as_text=True)
        assert "busy" in text and "(d)" in text and 'href="/a/noise"' in text
        api = client.get("/api/answers/noise?seed=5")
        assert api.status_code == 503 and api.get_json()["status"] == 503
        assert "needs new computations (d)" in api.get_json()["error"]
        assert client.get("/a/noise/figures/samples-plot.svg?d.n=62").status_code == 503
        for url in ("/a/noise", "/a/noise?d.n=60", "/api/answers/noise", "/a/plain?seed=3",
                    "/a/noise/figures/samples-plot.png"):
            assert client.get(url).status_code == 200, url
    finally:
        slots.give_back()
    assert client.get("/a/noise?d.n=61").status_code == 200


def test_a_computation_holds_the_slot_until_it_ends(app, answers_dir, slots, monkeypatch):
    (answers_dir / "slow.md").write_text(textwrap.dedent(SLOW), encoding="utf-8")
    executor = app.extensions["kb"].rerunner  # what computes the views of other settings
    computing, run = threading.Event(), executor.run

    def run_and_tell(answer, seed=None, overrides=None, on_result=None):
        if overrides:
            computing.set()
        return run(answer, seed, overrides, on_result)

    monkeypatch.setattr(executor, "run", run_and_tell)
    statuses = {}
    first = threading.Thread(target=lambda: statuses.update(
        first=app.test_client().get("/a/slow?s.seconds=1").status_code))
    first.start()
    try:
        assert computing.wait(10)
        client = app.test_client()
        assert client.get("/a/slow?s.seconds=0.1").status_code == 503
        assert client.get("/a/slow").status_code == 200  # its own settings: never computed here
    finally:
        first.join(10)
    assert statuses == {"first": 200}
    assert app.test_client().get("/a/slow?s.seconds=0.1").status_code == 200


@pytest.mark.parametrize("slots", [0, -1, 1.5, True, "2"])
def test_compute_slots_must_be_a_positive_integer(slots):
    with pytest.raises(ValueError, match="compute slots must be an integer >= 1"):
        ComputeSlots(slots)


def test_more_slots_allow_more_computations_at_once():
    slots = ComputeSlots(2)
    assert slots.try_take() and slots.try_take() and not slots.try_take()
    slots.give_back()
    assert slots.try_take()
