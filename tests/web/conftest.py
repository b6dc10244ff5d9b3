"""Fixtures of the web tests: an app over a tmp folder of small answers.

The answers use experiments registered here under names starting with "test_web_": they run
in milliseconds and are deterministic functions of (parameters, seed), so the tests do not
depend on the real answers' run time. One answer is broken on purpose.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from engine.registry import Param, experiment, figure
from kb.config import Settings
from kb.web.app import create_app
from tests.web.browser import browser, live_url, real_live_url  # noqa: F401 (browser fixtures)


@experiment(
    "test_web_noise",
    params={
        "n": Param(int, 50, 2, 1000, "samples"),
        "scale": Param(float, 1.0, 0.0, 10.0, "spread of the samples"),
        "kind": Param(str, "normal", choices=("normal", "uniform"), doc="distribution"),
    },
    figures=("samples",),
)
def test_web_noise(rng, n, scale, kind):
    """``n`` samples of ``scale`` times a standard distribution; their mean and spread."""
    xs = scale * (rng.normal(size=n) if kind == "normal" else rng.uniform(-1.0, 1.0, size=n))
    return {"mean": float(xs.mean()), "spread": float(xs.std()), "n": n, "xs": xs}


@figure("test_web_noise", "samples")
def draw_test_web_noise(result, fig):
    ax = fig.subplots()
    ax.plot(result["xs"], marker=".", linestyle="none")
    ax.set_xlabel("sample")


@experiment("test_web_broken", params={}, figures=("samples",))
def test_web_broken(rng):
    """Always fails: a demonstration that cannot run."""
    raise RuntimeError("this experiment always fails")


NOISE = """\
---
slug: noise
title: How noisy are the samples?
question: When we draw a few samples, how far is their mean from zero?
thread: Why does batch norm work?
topic: Noise and regularization
tags: [noise, samples]
aliases: [sample-noise]
related: [plain, broken]
summary: >-
  The mean of fifty standard normal samples is close to zero but never exactly zero: its
  typical distance is one over the square root of the sample size.
---

The mean of the samples is {{ d.mean:.3f }} and their spread {{ d.spread:.2f }}.

## Why the mean moves with $\\sqrt{n}$

The standard error is $\\sigma / \\sqrt{n}$; for batch norm,
$\\hat{x}_i = \\frac{x_i - \\mu_B}{\\sigma_B}$.

$$
\\operatorname{Var}(\\bar{x}) = \\frac{\\sigma^2}{m}
$$

This TeX is broken on purpose: $x^$.

```demo d
experiment: test_web_noise
params: {n: 50}
seed: 0
figures:
  - name: samples-plot
    drawing: samples
    caption: The samples, one dot each.
```

```claim spread-positive
kind: check
text: The samples are spread out.
check: d.spread > 0
```

```claim mean-huge
kind: check
text: The mean is larger than ten.
check: d.mean > 10
```

## Costs $5 and code `$x$`

Some `code` stays as it is.
"""

PLAIN = """\
---
slug: plain
title: A plain answer without demonstrations
question: Is there an answer with nothing to run?
thread: Batch Normalization Intuition
topic: What batch norm computes
tags: []
aliases: []
related: [noise]
summary: Yes, this one only has words.
---

Only words here.

## A heading
"""

BROKEN = """\
---
slug: broken
title: A broken answer
question: What happens when a demonstration fails?
thread: Batch Normalization Intuition
tags: []
aliases: []
related: []
summary: The page still shows, with an error box.
colour: red
---

Before the broken demonstration.

```demo bad
experiment: test_web_broken
```

```claim never
kind: check
text: This cannot be checked.
check: bad.value > 0
```

After it; its value would be {{ bad.value:.2f }}.
"""


def write_answers(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for slug, text in (("noise", NOISE), ("plain", PLAIN), ("broken", BROKEN)):
        (folder / f"{slug}.md").write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


@pytest.fixture
def answers_dir(tmp_path: Path) -> Path:
    return write_answers(tmp_path / "answers")


@pytest.fixture
def settings(tmp_path: Path, answers_dir: Path) -> Settings:
    # A rerun's request waits for its job long enough to show its results (as quick reruns
    # do in service); tests of the states of a rerun not done yet set rerun_wait=0.
    return Settings(answers_dir=answers_dir, data_dir=tmp_path / "data", rerun_wait=30.0)


@pytest.fixture
def app(settings: Settings):
    # No throttling: tests edit answer files and expect the next request to see the change.
    app = create_app(settings.replace(reload_interval=0.0, index_interval=0.0), TESTING=True)
    # As a server's warm-up at start leaves it: every answer's own settings computed (pages
    # at their own settings never compute; what they lack shows as computing).
    app.extensions["kb"].warm(samples=False, figures=False)
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def servers(tmp_path: Path):
    """Processes a test starts (servers, workers, redis-server), killed at its end."""
    from faults import Servers  # registers the fault experiments: only where it is used

    started = Servers(tmp_path)
    yield started
    started.close()
