"""Findings on the page and in the JSON: measured over the answer's sample of seeds in the
background, shown as pending until then, then with their effect, interval and per-seed dots."""
from __future__ import annotations

import time

import numpy as np
import pytest

from kb.answers.stats import Effect, ci
from kb.model import Claim, ClaimOutcome, Location
from kb.web.render import claim_html, seed_list, seed_strip

SAMPLED = """\
---
slug: sampled
title: Is the mean of the samples near zero?
question: Over many seeds, where does the mean of fifty samples fall?
thread: Why does batch norm work?
summary: The mean of fifty samples is near zero; over ten seeds its interval says how near.
seeds: 10
---

The mean over seeds: {{ effect(s.mean) : .3f }}; this seed's: {{ s.mean : .3f }}.

```demo s
experiment: test_web_noise
seed: 4
```

```claim near-zero
kind: finding
text: The mean of fifty samples is within 0.5 of zero on average.
check: ci_high(abs(s.mean)) < 0.5
```

```claim n-is-fifty
kind: check
text: Fifty samples are drawn.
check: s.n == 50
```
"""


@pytest.fixture
def sampled(answers_dir):
    (answers_dir / "sampled.md").write_text(SAMPLED)


def wait_for_findings(client, deadline: float = 20.0) -> dict:
    """The answer's JSON once its findings are measured (the sampler runs in the background;
    a pending page is made again after a few seconds, so the memo is cleared to look now)."""
    started = time.monotonic()
    while True:
        body = client.get("/api/answers/sampled").get_json()
        if body["claims"][0]["effect"] is not None:
            return body
        assert time.monotonic() - started < deadline, body["claims"][0]
        client.application.extensions["kb"].outcomes.clear()
        time.sleep(0.1)


def test_findings_are_pending_at_once_then_measured_over_the_sample(sampled, client):
    first = client.get("/api/answers/sampled").get_json()
    finding, check = first["claims"]
    assert (finding["kind"], check["kind"]) == ("finding", "check")
    assert finding["holds"] is None and finding["effect"] is None
    assert "being measured over the answer's 10 seeds" in finding["detail"]
    assert check["holds"] is True and check["seeds"] == [4] and "effect" not in check
    assert first["errors"] == []

    body = wait_for_findings(client)
    finding = body["claims"][0]
    assert finding["holds"] is True and finding["seeds"] == list(range(10))
    effect = finding["effect"]
    assert effect["seeds"] == 10 and len(effect["values"]) == 10
    assert effect["mean"] == pytest.approx(np.mean(effect["values"]))
    assert effect["ci"] == pytest.approx(list(ci(np.array(effect["values"]))))
    assert effect["quantity"] == "abs(s.mean)"


def test_the_page_shows_the_effect_the_strip_and_the_kinds(sampled, client):
    wait_for_findings(client)
    client.application.extensions["kb"].pages.clear()
    html = client.get("/a/sampled").get_data(as_text=True)
    assert 'class="claim claim-finding claim-holds" id="claim-near-zero"' in html
    assert 'class="claim claim-check claim-holds" id="claim-n-is-fifty"' in html
    assert "95% CI" in html and 'class="seed-strip"' in html
    assert html.count('class="strip-dot"') == 10
    assert "(95% CI " in html  # the effect quoted in prose
    assert "over 10 seeds" in html


def test_a_rerun_keeps_the_findings_of_the_answers_own_settings(sampled, client):
    own = wait_for_findings(client)["claims"][0]
    rerun = client.get("/api/answers/sampled?seed=7&s.n=60").get_json()
    assert rerun["claims"][0]["effect"] == own["effect"]
    assert rerun["claims"][1]["seeds"] == [7] and rerun["claims"][1]["holds"] is False


def effect_outcome(values, holds=True) -> ClaimOutcome:
    claim = Claim("gap", "The gap is positive.", "ci_low(x.gap) > 0", None,
                  Location("answers/x.md", 3), "finding")
    effect = Effect.of("x.gap", tuple(range(len(values))), np.array(values))
    return ClaimOutcome(claim, holds, effect.ci[0], "ci_low(x.gap) = 0.1 (needs > 0)", None,
                        effect.seeds, effect, "lower end of the 95% interval 0.0446 (needs above 0)")


def test_a_finding_box_leads_with_its_effect_and_a_check_is_labelled():
    html = claim_html(effect_outcome([0.1, 0.3, 0.2, 0.4]))
    assert '<span class="claim-kind">Finding</span>' in html
    assert "Over the seeds: mean 0.25, 95% CI 0.04 to 0.46 over 4 seeds; per seed 0.10 to " \
           "0.40" in html
    # The quantity's name is on demand, with the condition.
    assert "<p>Per seed: <code>x.gap</code></p></details>" in html
    assert "x.gap" not in html[:html.index("<details")]
    assert "seeds <span class=\"claim-seeds\">0–3</span>" in html
    check = ClaimOutcome(Claim("c", "True by construction.", "x.a == 0", None,
                               Location("answers/x.md", 9), "check"), True, 0, "x.a = 0", 2, (2,))
    assert '<span class="claim-kind">Check</span>' in claim_html(check)
    assert "seed-strip" not in claim_html(check)


def test_seed_lists_fold_runs_into_ranges():
    assert seed_list(()) == "—"
    assert seed_list((4,)) == "4"
    assert seed_list((0, 1)) == "0, 1"
    assert seed_list(tuple(range(20)) + (40, 41, 42, 50)) == "0–19, 40–42, 50"


def test_the_strip_marks_zero_when_the_values_straddle_it_and_escapes_nothing_unsafe():
    strip = seed_strip(Effect.of("q", (0, 1, 2), np.array([-1.0, 0.5, 2.0])))
    assert 'class="strip-zero"' in strip and strip.count('class="strip-dot"') == 3
    far = seed_strip(Effect.of("q", (0, 1, 2), np.array([100.0, 101.0, 102.0])))
    assert 'class="strip-zero"' not in far
    assert "<script" not in strip and "style=" not in strip
