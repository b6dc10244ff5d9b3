"""Shared fixtures of the kb tests: tiny seeded experiments and answer files in tmp_path.

The experiments are registered under names starting with "test_" so they never clash with
the engine's. They are fast (micro-seconds) and a deterministic function of (params, seed).
"""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from engine.registry import Param, experiment


@experiment(
    "test_drift",
    params={
        "n": Param(int, 64, 2, 4096, "samples"),
        "scale": Param(float, 1.0, 0.0, 10.0, "how far the inputs drift"),
    },
    figures=("drift_plot",),
)
def test_drift(rng, n, scale):
    """Ratio of a drifted sample's spread to a plain one's; varies with the seed."""
    plain = rng.normal(size=n)
    drifted = scale * rng.normal(size=n) + 3.0
    return {
        "ratio": float(np.std(drifted) / np.std(plain) * 3.0),
        "means": np.array([plain.mean(), drifted.mean()]),
        "n": n,
        "label": "drift",
    }


@experiment("test_sleep", params={"seconds": Param(float, 0.0, 0.0, 60.0, "how long to sleep")})
def test_sleep(rng, seconds):
    """Sleeps, then returns a constant: for time limits."""
    time.sleep(seconds)
    return {"slept": seconds}


@experiment("test_broken", params={})
def test_broken(rng):
    """Always raises: for demonstrations that fail."""
    raise RuntimeError("this experiment always fails")


FRONT_MATTER = """\
---
slug: {slug}
title: Does it drift?
question: How much does the test experiment drift?
thread: Test thread
tags: [testing]
aliases: []
related: []
summary: A short summary.
---
"""


@pytest.fixture
def answers_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "answers"
    folder.mkdir()
    return folder


@pytest.fixture
def write_answer(answers_dir: Path):
    """``write_answer(slug, body, front=None, seeds=None)``: an answer file with front matter
    (with ``seeds: N`` when given: the sample its findings are measured on); its path."""

    def write(slug: str, body: str, front: str | None = None, seeds: int | None = None) -> Path:
        path = answers_dir / f"{slug}.md"
        header = FRONT_MATTER.format(slug=slug) if front is None else textwrap.dedent(front)
        if seeds is not None:
            header = header.replace("\n---\n", f"\nseeds: {seeds}\n---\n", 1)
        path.write_text(header + textwrap.dedent(body), encoding="utf-8")
        return path

    return write


@pytest.fixture
def line_of():
    """``line_of(path, needle)``: the 1-based number of the one line containing ``needle``."""

    def find(path: Path, needle: str) -> int:
        lines = [i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line]
        assert len(lines) == 1, f"{needle!r} is on lines {lines} of {path}"
        return lines[0]

    return find


@pytest.fixture
def good_body() -> str:
    """A body using every part of the format, over the test_drift experiment."""
    return GOOD_BODY


GOOD_BODY = """\
The drift ratio is {{drift.ratio:.2f}} with {{drift.n}} samples.

```demo drift
experiment: test_drift
params: {n: 32, scale: 2.0}
seed: 3
figures:
  - name: drift-figure
    drawing: drift_plot
    caption: The drift.
```

```claim drift-is-large
kind: check
text: The drifted spread is larger.
check: drift.ratio > 1
```
"""
