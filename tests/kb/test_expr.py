"""The expression language: what it computes, and everything it refuses, with the line."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kb.answers.expr import is_nan, parse_condition, parse_expression
from kb.model import AnswerError, Location

AT = Location("answers/x.md", 40)
RESULTS = {
    "drift": {
        "ratio": 2.5,
        "xs": np.array([1.0, 2.0, 4.0]),
        "n": np.int64(3),
        "flag": np.bool_(True),
    },
    "other": {"ratio": 0.5, "grid": np.arange(6.0).reshape(2, 3)},
}


def value(source: str):
    return parse_expression(source, AT, RESULTS).evaluate(RESULTS)


@pytest.mark.parametrize(
    "source, expected",
    [
        ("drift.ratio + other.ratio * 2", 3.5),
        ("(drift.ratio - 0.5) / 4", 0.5),
        ("drift.n // 2 + drift.n % 2", 2),
        ("2 ** 3 - -drift.ratio", 10.5),
        ("drift.xs[-1] - drift.xs[0]", 3.0),
        ("other.grid[1][2]", 5.0),
        ("abs(other.ratio - drift.ratio)", 2.0),
        ("min(drift.xs) + max(drift.xs)", 5.0),
        ("max(drift.ratio, other.ratio, 7)", 7.0),
        ("mean(drift.xs) * len(drift.xs)", 7.0),
        ("sum(drift.xs)", 7.0),
        ("sqrt(drift.xs[2]) + log(exp(1.0))", 3.0),
        ("drift.ratio > 2", True),
        ("0 < other.ratio < 1 <= drift.ratio", True),
        ("0 < other.ratio < 0.4", False),
        ("drift.ratio == 2.5 and not drift.ratio != 2.5", True),
        ("drift.ratio < 1 or drift.flag", True),
        ("all(drift.xs > 0) and any(drift.xs > 3)", True),
        ("all(drift.xs > 1)", False),
        ("True", True),
    ],
)
def test_evaluates(source, expected):
    assert value(source) == pytest.approx(expected)


@pytest.mark.parametrize(
    "source, expected",
    [
        ("approx(drift.ratio, 2.4, rel=0.05)", True),  # 0.1 <= 0.05 * 2.4
        ("approx(drift.ratio, 2.4, rel=0.04)", False),
        ("approx(drift.ratio, 2.4, abs=0.11)", True),
        ("approx(drift.ratio, 2.4, abs=0.09)", False),
        ("approx(drift.ratio, 2.4, rel=0.01, abs=0.2)", True),  # either tolerance suffices
        ("approx(drift.ratio, 2.5)", True),
        ("approx(drift.ratio, 2.5 + 1e-5)", False),  # default rel=1e-6
        ("approx(drift.xs, drift.xs + 0.01, abs=0.02)", True),  # arrays: every element
        ("approx(drift.xs, drift.xs * 1.1, abs=0.15)", False),
    ],
)
def test_approx_uses_relative_or_absolute_tolerance(source, expected):
    assert value(source) is expected


def test_values_keep_numpy_types_and_arrays():
    assert np.array_equal(value("drift.xs * 2"), [2.0, 4.0, 8.0])
    assert value("drift.n + 1") == 4
    assert np.array_equal(value("drift.xs > 1.5"), [False, True, True])


def test_expression_knows_the_demonstrations_it_reads():
    expr = parse_expression("drift.ratio / other.ratio + abs(drift.xs[0])", AT, RESULTS)
    assert expr.demos() == {"drift", "other"}


REFUSED = [
    ("__import__('os')", "function '__import__' is not allowed"),
    ("__import__('os').system('true')", "cannot be called"),
    ("drift.__class__", "'__class__' is not allowed"),
    ("drift._private", "'_private' is not allowed"),
    ("(lambda: 1)()", "lambda is not allowed"),
    ("max(lambda x: x)", "lambda is not allowed"),
    ("[x for x in drift.xs]", "a comprehension is not allowed"),
    ("sum(x for x in drift.xs)", "a comprehension is not allowed"),
    ("'text'", "a string is not allowed"),
    ("f'{drift.ratio}'", "a string is not allowed"),
    ("open('x')", "function 'open' is not allowed"),
    ("drift.xs.sum()", "cannot be called"),
    ("drift.ratio.real", "one dot only"),
    ("ratio", "unknown name 'ratio'"),
    ("drift", "'drift' needs a field"),
    ("nowhere.ratio", "unknown demonstration 'nowhere'"),
    ("drift.xs[1:2]", "only indexing with an integer constant"),
    ("drift.xs[drift.n]", "only indexing with an integer constant"),
    ("drift.ratio if drift.flag else 0", "if/else is not allowed"),
    ("(x := 1)", "assignment (:=) is not allowed"),
    ("drift.n & 1", "operator"),
    ("drift.ratio is None", "comparison"),
    ("None", "None is not allowed"),
    ("[1, 2]", "a list is not allowed"),
    ("approx(drift.ratio)", "approx() takes two arguments"),
    ("approx(drift.ratio, 1, tol=1)", "only rel= and abs="),
    ("abs(drift.ratio, 1)", "abs() takes one argument"),
    ("drift.ratio >", "syntax error"),
    ("1if drift.flag else 2", "invalid decimal literal"),
    ("", "empty expression"),
]


@pytest.mark.parametrize("source, message", REFUSED)
def test_refuses_with_the_line(source, message):
    with pytest.raises(AnswerError) as caught:
        parse_expression(source, AT, RESULTS)
    assert caught.value.location == AT
    assert message in caught.value.message
    assert str(caught.value).startswith("answers/x.md:40: ")


def test_error_on_a_later_line_of_a_multiline_expression_names_that_line():
    with pytest.raises(AnswerError) as caught:
        parse_condition("drift.ratio > 1 and\n  drift.__dict__ > 0", AT, RESULTS)
    assert caught.value.location.line == 41
    with pytest.raises(AnswerError) as caught:
        parse_condition("drift.ratio > 1 and\n  drift.ratio >", AT, RESULTS)
    assert caught.value.location.line == 41


def test_a_condition_must_be_true_or_false():
    with pytest.raises(AnswerError, match="not true or false"):
        parse_condition("drift.ratio * 3", AT, RESULTS)
    for source in (
        "drift.ratio > 1",
        "approx(drift.ratio, 2.5)",
        "all(drift.xs > 0)",
        "not drift.flag",
    ):
        assert parse_condition(source, AT, RESULTS).root is not None


@pytest.mark.parametrize(
    "source, message",
    [
        (
            "drift.ratoi",
            "demonstration 'drift' has no field 'ratoi' (it has: flag, n, ratio, xs); did you mean 'ratio'?",
        ),
        ("drift.xs[3]", "index 3 is out of range in 'drift.xs[3]' ('drift.xs' has 3 elements)"),
        ("drift.ratio[0]", "'drift.ratio' is 2.5, not an array to index"),
        (
            "drift.ratio / (other.ratio - 0.5)",
            "division by zero in 'drift.ratio / (other.ratio - 0.5)'",
        ),
        ("drift.xs / (drift.xs - 1)", "divide by zero"),
        ("log(other.ratio - 1)", "invalid value"),
        ("drift.ratio ** 10 ** 10", "overflow"),
        ("drift.xs > 1 and drift.flag", "is an array, which is neither true nor false"),
        ("drift.ratio and drift.flag", "'drift.ratio' is 2.5, not True or False"),
        ("len(drift.ratio)", "len() needs an array"),
        ("approx(drift.ratio, 2, rel=-0.1)", "is negative"),
    ],
)
def test_evaluation_errors_name_the_place_and_the_problem(source, message):
    expr = parse_expression(source, AT, RESULTS)
    with pytest.raises(AnswerError) as caught:
        expr.evaluate(RESULTS)
    assert caught.value.location == AT
    assert message in caught.value.message


def test_is_nan_finds_nan_in_scalars_and_arrays():
    assert is_nan(float("nan")) and is_nan(np.float32("nan")) and is_nan(np.array([1.0, np.nan]))
    assert not is_nan(1.0) and not is_nan(np.array([1, 2])) and not is_nan("nan")


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("drift.ratioxs[]()-+*/<>=!,:_'\" 0123456789lambd")),
        max_size=40,
    )
)
def test_any_text_is_either_parsed_or_refused_cleanly(source):
    # Whatever an author types, the parser answers with a tree or an AnswerError, never a crash.
    try:
        expr = parse_expression(source, AT, RESULTS)
    except AnswerError as exc:
        assert exc.location.line >= AT.line
        return
    try:
        expr.evaluate(RESULTS)
    except AnswerError as exc:
        assert exc.location == AT


# --- findings: aggregates over a sample of seeds ------------------------------------------

from kb.answers.expr import SeedSample  # noqa: E402
from kb.answers.stats import Effect, ci  # noqa: E402

GAPS = [0.02, -0.01, 0.05, 0.03]
SAMPLE = SeedSample((0, 1, 2, 3), tuple(
    {"drift": {"ratio": 1.0 + gap * 100, "xs": np.array([gap, 2 * gap]), "n": np.int64(3)},
     "other": {"ratio": gap}}
    for gap in GAPS))


def finding(source: str):
    return parse_condition(source, AT, RESULTS, kind="finding").evaluate(SAMPLE)


def test_a_finding_reduces_per_seed_values_across_seeds():
    assert finding(f"ci_low(other.ratio) == {float(ci(np.array(GAPS))[0])!r}")
    assert finding("mean(other.ratio) == 0.0225")
    assert finding("frac(drift.ratio > 1) == 0.75")
    assert finding("min(other.ratio) == -0.01 and max(other.ratio) == 0.05")
    assert finding("median(other.ratio) == 0.025")
    assert finding("quantile(other.ratio, 0) == -0.01")
    # Inside an aggregate mean/min/max reduce one seed's arrays; outside, across seeds.
    assert finding("approx(max(mean(drift.xs)), 0.075)")
    assert finding("approx(mean(drift.xs)[1], 0.045) and approx(mean(drift.xs)[0], 0.0225)")
    assert finding("std(other.ratio) > 0 and ci_high(other.ratio - other.ratio) == 0")


def test_an_inline_value_with_effect_shows_the_mean_and_interval():
    expression = parse_expression("effect(other.ratio)", AT, RESULTS)
    assert expression.over_seeds
    effect = expression.evaluate(SAMPLE)
    assert isinstance(effect, Effect) and effect.seeds == (0, 1, 2, 3)
    assert effect.values == tuple(GAPS) and effect.mean == pytest.approx(0.0225)
    assert not parse_expression("mean(drift.xs)", AT, RESULTS).over_seeds  # one run


@pytest.mark.parametrize("source, kind, message", [
    ("ci_low(drift.ratio) > 0", "check",
     "ci_low() is an aggregate over seeds: it cannot be used in a check"),
    ("frac(drift.ratio > 1) >= 0.9", "check", "frac() is an aggregate over seeds"),
    ("drift.ratio > 1", "finding",
     "'drift.ratio' is measured over seeds here: put it inside an aggregate"),
    ("mean(drift.ratio) > drift.n", "finding", "'drift.n' is measured over seeds here"),
    ("mean(ci_low(drift.xs)) > 0", "finding",
     "ci_low() is an aggregate over seeds: it cannot be used inside another aggregate"),
    ("1 < 2", "finding", "finding '1 < 2' measures nothing over seeds"),
    ("quantile(drift.ratio) > 0", "finding", "quantile() over seeds takes quantile(values, q)"),
    ("effect(drift.ratio) > 0", "finding", "effect() shows an effect in prose"),
])
def test_aggregates_are_refused_where_they_mean_nothing(source, kind, message):
    with pytest.raises(AnswerError) as raised:
        parse_condition(source, AT, RESULTS, kind=kind)
    assert message in str(raised.value) and raised.value.location == AT


def test_a_finding_needs_at_least_two_seeds_for_an_interval():
    expression = parse_condition("ci_low(other.ratio) > 0", AT, RESULTS, kind="finding")
    one = SeedSample((0,), SAMPLE.per_seed[:1])
    with pytest.raises(AnswerError, match="needs at least 2 seeds, got 1"):
        expression.evaluate(one)
