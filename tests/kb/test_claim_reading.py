"""What a claim box shows a reader: the measured values and their bounds in words, as numbers
people read (×10⁻³, short lists), without the expression's names (those stay in the detail,
shown on demand)."""
from __future__ import annotations

import numpy as np
import pytest

from kb.answers.parse import parse_answer
from kb.model import AnswerRun, DemoResult
from kb.run.claims import evaluate_claims


@pytest.fixture
def answer(write_answer, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)

    def parse(check: str, kind: str = "check"):
        body = ("```demo drift\nexperiment: test_drift\n```\n\n"
                f'```claim c\nkind: {kind}\ntext: A claim.\ncheck: "{check}"\n```\n')
        return parse_answer(write_answer("reading", body,
                                         seeds=10 if kind == "finding" else None))

    return parse


def reading(answer, check: str, kind: str = "check", seeds=(4,), **values) -> str:
    a = answer(check, kind)
    runs = [AnswerRun(a, seed, {"drift": DemoResult("drift", seed, {}, {
        k: (v(seed) if callable(v) else v) for k, v in values.items()}, None, 0.01, False)})
        for seed in seeds]
    (outcome,) = evaluate_claims(a, runs)
    assert "drift." not in outcome.reading, outcome.reading
    return outcome.reading


@pytest.mark.parametrize("check, values, text", [
    ("drift.gap < 1e-6", {"gap": 1.825e-8}, "1.825×10⁻⁸ (needs below 10⁻⁶)"),
    ("drift.gap < 1e-3", {"gap": 1.825e-5}, "1.825×10⁻⁵ (needs below 0.001)"),
    ("3 <= drift.ratio", {"ratio": 2.1}, "2.1 (needs at least 3)"),
    ("drift.ratio > 2 * drift.base", {"ratio": 5.0, "base": 2.0}, "5 (needs above 4)"),
    # Enough digits that the value does not read as the bound ("1 (needs above 1)").
    ("drift.cos > 0.999999", {"cos": 0.9999996}, "1 (needs above 0.999999)"),
    ("drift.cos < 0.999999", {"cos": 0.9999986}, "0.9999986 (needs below 0.999999)"),
    ("all(drift.r > 0.5)", {"r": np.array([0.98, 0.981, 1.0, 1.03, 1.07])},
     "[0.98, 0.981, 1, 1.03, 1.07] (needs all above 0.5)"),
    ("approx(drift.size, 4, rel=0.15)", {"size": 3.868}, "3.868 (needs within 15% of 4)"),
    ("drift.a < 0.01 and drift.b > 1", {"a": 0.001253, "b": 2.5},
     "0.001253 (needs below 0.01); 2.5 (needs above 1)"),
    ("not drift.ratio > 3", {"ratio": 2.0}, "2 (needs above 3), which must not hold"),
])
def test_a_check_reads_as_values_and_bounds(answer, check, values, text):
    assert reading(answer, check, **values) == text


def test_a_finding_names_its_aggregate_in_words(answer):
    text = reading(answer, "ci_high(abs(drift.tracking)) < 0.1", kind="finding",
                   seeds=range(10), tracking=lambda seed: 0.01 * seed)
    assert text.startswith("upper end of the 95% interval 0.0") and text.endswith(
        "(needs below 0.1)")


def test_the_detail_names_the_quantity_and_writes_constants_as_powers_of_ten(answer):
    a = answer("drift.gap < 1e-6 and approx(drift.r, 1)")
    run = AnswerRun(a, 0, {"drift": DemoResult("drift", 0, {}, {"gap": 1.825e-8, "r": 1.0},
                                               None, 0.01, False)})
    (outcome,) = evaluate_claims(a, [run])
    assert outcome.detail == ("drift.gap = 1.825×10⁻⁸ (needs < 10⁻⁶); "
                              "drift.r = 1 (needs within rel 10⁻⁶ of 1)")
