"""Claims over seeds (the worst seed is reported) and inline values (never raise)."""

from __future__ import annotations

import numpy as np
import pytest

from kb.run.cache import Cache
from kb.run.claims import (
    INLINE_ERROR_MARKER,
    describe_effect,
    describe_outcome,
    evaluate_claim,
    evaluate_claims,
    format_inline_values,
    format_value,
)
from kb.run.executor import Executor
from kb.model import AnswerRun, DemoResult
from kb.answers.parse import parse_answer
from kb.answers.stats import Effect


@pytest.fixture
def answer(write_answer, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)

    def parse(*checks: str, prose: str = ""):
        claims = "\n".join(
            f'```claim c{i}\nkind: check\ntext: Claim {i}.\ncheck: "{check}"\n```\n'
            for i, check in enumerate(checks)
        )
        body = f"{prose}\n\n```demo drift\nexperiment: test_drift\n```\n\n{claims}"
        return parse_answer(write_answer("claims", body))

    return parse


def run_with(answer, seed, error=None, **values):
    result = DemoResult("drift", seed, {}, None if error else values, error, 0.01, False)
    return AnswerRun(answer, seed, {"drift": result})


def test_outcome_reports_left_hand_side_and_what_it_needs(answer):
    a = answer("drift.ratio >= 3")
    (outcome,) = evaluate_claims(a, [run_with(a, 4, ratio=2.1)])
    assert outcome.holds is False
    assert outcome.value == 2.1
    assert outcome.detail == "drift.ratio = 2.1 (needs >= 3)"
    assert outcome.seed == 4 and outcome.seeds == (4,)
    line = a.claims[0].location.line
    assert describe_outcome(outcome) == (
        f'answers/claims.md:{line}: claim "Claim 0." failed: drift.ratio = 2.1 (needs >= 3) at seed 4'
    )


@pytest.mark.parametrize(
    "check, detail",
    [
        ("3 <= drift.ratio", "drift.ratio = 2.1 (needs >= 3)"),  # the measured side comes first
        (
            "drift.ratio >= 2 * drift.base",
            "drift.ratio = 2.1 (needs >= 2 * drift.base, which is 3)",
        ),
        ("1 < drift.ratio < 2", "drift.ratio = 2.1 (needs 1 < drift.ratio < 2)"),
        ("approx(drift.ratio, 2, rel=0.01)", "drift.ratio = 2.1 (needs within rel 0.01 of 2)"),
        ("all(drift.xs > 1)", "drift.xs = [0.5, 2, 3] (needs all > 1)"),
        ("drift.ratio > 1 and drift.ratio > 5", "drift.ratio = 2.1 (needs > 5)"),
        (
            "drift.ratio > 9 or drift.base > 9",
            "drift.ratio = 2.1 (needs > 9); drift.base = 1.5 (needs > 9)",
        ),
        ("not drift.ratio > 2", "drift.ratio = 2.1 (needs > 2), which must not hold"),
    ],
)
def test_failing_details(answer, check, detail):
    a = answer(check)
    (outcome,) = evaluate_claims(
        a, [run_with(a, 0, ratio=2.1, base=1.5, xs=np.array([0.5, 2.0, 3.0]))]
    )
    assert outcome.holds is False
    assert outcome.detail == detail


def test_claim_holds_only_if_it_holds_for_every_seed_and_reports_the_failing_seed(answer):
    a = answer("drift.ratio >= 3")
    runs = [
        run_with(a, seed, ratio=ratio) for seed, ratio in [(0, 3.5), (1, 2.9), (2, 4.0), (3, 2.5)]
    ]
    outcome = evaluate_claim(a.claims[0], runs)
    assert outcome.holds is False
    assert (outcome.seed, outcome.value) == (3, 2.5)  # the worst of the two failing seeds
    assert outcome.seeds == (0, 1, 2, 3)


def test_a_nan_result_fails_and_is_the_worst_seed(answer):
    a = answer("drift.ratio >= 3")
    runs = [
        run_with(a, 0, ratio=1.0),
        run_with(a, 1, ratio=float("nan")),
        run_with(a, 2, ratio=0.5),
    ]
    outcome = evaluate_claim(a.claims[0], runs)
    assert outcome.holds is False and outcome.seed == 1
    assert outcome.detail == "drift.ratio = NaN (needs >= 3)"


def test_passing_claim_reports_the_seed_with_the_smallest_margin(answer):
    a = answer("drift.ratio >= 3", "0.5 < drift.ratio < 5", "approx(drift.ratio, 4, abs=1.5)")
    runs = [run_with(a, seed, ratio=ratio) for seed, ratio in [(0, 3.5), (1, 4.6), (2, 3.2)]]
    above, between, near = evaluate_claims(a, runs)
    assert above.holds and (above.seed, above.value) == (2, 3.2)
    assert between.holds and between.seed == 1  # 4.6 is closest to the upper bound
    assert near.holds and near.seed == 2  # 3.2 is farthest from 4


def test_guarded_and_short_circuits(answer):
    a = answer("len(drift.xs) > 3 and drift.xs[3] > 0")
    (outcome,) = evaluate_claims(a, [run_with(a, 0, xs=np.array([1.0, 2.0]))])
    assert outcome.holds is False
    assert outcome.detail == "len(drift.xs) = 2 (needs > 3)"


def test_claim_on_a_failed_demonstration_cannot_be_evaluated(answer):
    a = answer("drift.ratio >= 3")
    error = "answers/claims.md:3: demonstration 'drift' timed out after 1 s"
    runs = [run_with(a, 0, ratio=4.0), run_with(a, 1, error=error)]
    outcome = evaluate_claim(a.claims[0], runs)
    assert outcome.holds is None and outcome.seed == 1
    assert outcome.detail == error


@pytest.mark.parametrize(
    "check, message",
    [
        ("drift.ratoi > 1", "demonstration 'drift' has no field 'ratoi' (it has: ratio, xs)"),
        (
            "drift.xs > 1",
            "compares arrays, which is neither true nor false: use all(...) or any(...)",
        ),
        ("drift.ratio / (drift.ratio - 2) > 1", "division by zero"),
    ],
)
def test_unevaluable_claims_name_the_check_line(answer, check, message):
    a = answer(check)
    (outcome,) = evaluate_claims(a, [run_with(a, 0, ratio=2.0, xs=np.array([1.0, 2.0]))])
    assert outcome.holds is None
    assert outcome.detail.startswith(f"{a.claims[0].expr.location}: ")
    assert message in outcome.detail


def test_numpy_results_are_handled(answer):
    a = answer("drift.ratio > 1", "all(drift.xs < 10)", "approx(mean(drift.xs), 2, abs=0.5)")
    run = run_with(a, 0, ratio=np.float32(2.5), xs=np.arange(4, dtype=np.int64))
    outcomes = evaluate_claims(a, [run])
    assert [o.holds for o in outcomes] == [True, True, True]
    assert outcomes[0].detail == "drift.ratio = 2.5 (needs > 1)"


def test_inline_values_format_or_show_an_error_marker(answer):
    a = answer(
        prose=(
            "A {{drift.ratio:.2f}} B {{drift.xs:.1f}} C {{drift.count:d}} D {{drift.count}} "
            "E {{drift.ratio:d}} F {{drift.nan}} G {{drift.missing}} H {{drift.label}} I {{drift.ratio * 2:.1f}}"
        )
    )
    run = run_with(
        a,
        2,
        ratio=np.float64(2.3456),
        xs=np.array([1.0, 2.25]),
        count=np.int64(7),
        nan=float("nan"),
        label="bn",
    )
    shown = format_inline_values(a, run)
    assert [s.text for s in shown] == [
        "2.35",
        "[1.0, 2.2]",
        "7",
        "7",
        INLINE_ERROR_MARKER,
        INLINE_ERROR_MARKER,
        INLINE_ERROR_MARKER,
        "bn",
        "4.7",
    ]
    line = a.inline_values[0].location.line
    errors = [s.error for s in shown if s.error]
    assert errors[0].startswith(
        f"answers/claims.md:{line}: inline value {{{{drift.ratio:d}}}} failed: cannot format 2.346"
    )
    assert (
        errors[1]
        == f"answers/claims.md:{line}: inline value {{{{drift.nan}}}} failed: 'drift.nan' is NaN"
    )
    assert "has no field 'missing'" in errors[2]
    assert all(s.seed == 2 for s in shown)


def test_inline_value_of_a_failed_demonstration_carries_its_error(answer):
    a = answer(prose="Ratio {{drift.ratio:.1f}}.")
    (shown,) = format_inline_values(
        a, run_with(a, 0, error="answers/claims.md:3: demonstration 'drift' failed: boom")
    )
    assert shown.text == INLINE_ERROR_MARKER
    assert shown.error.endswith("failed: answers/claims.md:3: demonstration 'drift' failed: boom")


def test_format_value_handles_numpy():
    assert format_value(np.float32(0.25), ".1%") == "25.0%"
    assert format_value(np.array(3.0), "") == "3.0"
    assert format_value(np.array([[1, 2], [3, 4]]), "d") == "[[1, 2], [3, 4]]"  # one line of prose
    assert format_value(np.bool_(True), "") == "True"


def test_numbers_in_prose_use_a_minus_sign_and_powers_of_ten():
    assert format_value(-0.25, ".2f") == "−0.25"
    assert format_value(0.00131, ".1e") == "1.3×10⁻³"
    assert format_value(np.float64(2.5e6), ".2e") == "2.50×10⁶"
    assert format_value(1e6, ".0e") == "10⁶"
    assert format_value(np.array([0.5, -2.0]), "+.1f") == "[+0.5, −2.0]"


def test_claims_on_the_real_executor_over_seeds(answer, tmp_path):
    from engine.catalog import get_experiment

    params = get_experiment("test_drift").resolve({})
    ratios = [get_experiment("test_drift").run(params, seed)["ratio"] for seed in range(3)]
    threshold = sorted(ratios)[1]  # exactly one seed falls below
    a = answer(f"drift.ratio >= {threshold!r}")
    executor = Executor(Cache(tmp_path / "cache"), fresh=True, timeout=30)
    outcome = evaluate_claim(a.claims[0], [executor.run(a, seed=s) for s in range(3)])
    assert outcome.holds is False
    assert outcome.seed == int(np.argmin(ratios))
    assert outcome.value == min(ratios)


@pytest.mark.parametrize("values, text", [
    # One decimal place for all five numbers, that of the interval's width to two digits.
    ([0.47, 0.455, 0.49, 0.473, 0.48, 0.46],
     "mean 0.471, 95% CI 0.458 to 0.485 over 6 seeds; per seed 0.455 to 0.490"),
    ([0.1, 0.3, 0.2, 0.4], "mean 0.25, 95% CI 0.04 to 0.46 over 4 seeds; per seed 0.10 to 0.40"),
    ([47.3, 45.5, 49.0, 48, 46],
     "mean 47.2, 95% CI 45.4 to 48.9 over 5 seeds; per seed 45.5 to 49.0"),
    ([-0.03, 0.1, 0.02, 0.05],
     "mean 0.04, 95% CI −0.05 to 0.12 over 4 seeds; per seed −0.03 to 0.10"),
    # Near zero: no powers of ten, and no "−0.00".
    ([-0.002, 0.001, 0.003, -0.001],
     "mean 0.0003, 95% CI −0.0033 to 0.0038 over 4 seeds; per seed −0.0020 to 0.0030"),
    ([-0.003, 0.1, 0.2, 0.15], "mean 0.11, 95% CI −0.03 to 0.25 over 4 seeds; per seed 0.00 to "
                               "0.20"),
    # Powers of ten, no width or an infinite one: three significant digits each.
    ([1e200, 2e200, 3e200], "mean 2×10²⁰⁰, 95% CI −∞ to ∞ over 3 seeds; per seed 10²⁰⁰ to "
                            "3×10²⁰⁰"),
    ([1e-5, 2e-5, 3e-5], "mean 2×10⁻⁵, 95% CI −4.84×10⁻⁶ to 4.48×10⁻⁵ over 3 seeds; "
                         "per seed 10⁻⁵ to 3×10⁻⁵"),
    ([1.0, 1.0, 1.0], "mean 1, 95% CI 1 to 1 over 3 seeds; per seed 1 to 1"),
])
@pytest.mark.filterwarnings("ignore:overflow encountered")  # the 10²⁰⁰ values' variance
def test_an_effect_is_quoted_no_finer_than_its_interval(values, text):
    effect = Effect.of("x.gap", tuple(range(len(values))), np.array(values, dtype=float))
    assert describe_effect(effect) == text
