"""Claims and inline values, evaluated on executed demonstrations.

A claim holds for a set of seeds only if it holds for every seed. Its outcome reports the
measured quantity (the condition's left-hand side) and the worst seed: a failing one, else
the one with the smallest margin (how far the comparison was from flipping).

Inline values never raise: a value that cannot be shown becomes an error marker and a
message naming ``file:line``, so that one bad value never takes a page down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from kb.answers.expr import (
    Aggregate,
    Approx,
    Call,
    Compare,
    Const,
    EvaluationError,
    Expression,
    Logic,
    Node,
    Results,
    SeedSample,
    Unary,
    format_quantity,
    is_nan,
    truth,
)
from kb.answers.numbers import number, powers_of_ten, quantity
from kb.answers.stats import LEVEL, Effect
from kb.model import Answer, AnswerError, AnswerRun, Claim, ClaimOutcome, InlineValue

INLINE_ERROR_MARKER = "⚠"  # shown in place of an inline value that cannot be computed
PLACES_SHOWN = 4  # an effect needing more decimal places is shown with powers of ten

_MIRRORED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


@dataclass(frozen=True)
class _Verdict:
    holds: bool
    value: Any  # the measured quantity
    detail: str
    margin: float | None  # > 0 holds with room, < 0 fails by that much; None: not a quantity
    reading: str = ""  # the detail for a reader: values and bounds without the names


# How a reader's line names what a finding's aggregate measures (the expression is in the
# detail, shown on demand).
_AGGREGATE_WORDS = {
    "mean": "mean over the seeds", "median": "median over the seeds",
    "min": "smallest over the seeds", "max": "largest over the seeds",
    "std": "spread over the seeds", "quantile": "quantile over the seeds",
    "frac": "fraction of the seeds", "ci_low": f"lower end of the {LEVEL:.0%} interval",
    "ci_high": f"upper end of the {LEVEL:.0%} interval",
}
_OP_WORDS = {"<": "below", "<=": "at most", ">": "above", ">=": "at least", "==": "equal to",
             "!=": "other than"}


def _read_operand(node: Node, value: Any, digits: int = 4) -> str:
    """An operand as a reader's line shows it: its value, named only by its aggregate; a
    constant as written (up to 12 significant digits)."""
    if isinstance(node, Const):
        return number(node.value, 12) if isinstance(node.value, (int, float)) else node.text
    words = _AGGREGATE_WORDS.get(node.func) if isinstance(node, Aggregate) else None
    return f"{words} {quantity(value, digits)}" if words else quantity(value, digits)


def _distinct_digits(value: Any, bound: Any) -> int:
    """Significant digits that tell a measured number from the bound it is compared with
    (0.9999996 against 0.999999 is not "1 above 1")."""
    if not all(isinstance(v, (int, float, np.number)) for v in (value, bound)):
        return 4
    return next((d for d in range(4, 13) if number(value, d) != number(bound, d)), 12)


def _margin(op: str, left: Any, right: Any) -> Any:
    """How far ``left op right`` is from flipping (elementwise for arrays), or None."""
    try:
        a, b = np.asarray(left, dtype=float), np.asarray(right, dtype=float)
    except (TypeError, ValueError):
        return None
    if op in (">", ">="):
        return a - b
    if op in ("<", "<="):
        return b - a
    return -np.abs(a - b) if op == "==" else np.abs(a - b)


def _reduce_margin(margin: Any, quantifier: str) -> float | None:
    if margin is None:
        return None
    margin = np.asarray(margin, dtype=float)
    reduced = float(margin.max() if quantifier == "any" else margin.min())
    return -math.inf if math.isnan(reduced) else reduced  # a NaN is as far from holding as it gets


def _describe_operand(node: Node, value: Any) -> str:
    """A constant as written (its e-notation as a power of ten: "1e-3" reads "10⁻³"), any
    other operand by its expression and value."""
    if isinstance(node, Const):
        return powers_of_ten(node.text)
    return f"{node.text}, which is {format_quantity(value)}"


def _compare_verdict(node: Compare, results: Results, quantifier: str | None) -> _Verdict:
    values = node.operand_values(results)
    links = node.links(values)
    arrays = any(isinstance(link, np.ndarray) for link in links)
    if arrays and quantifier is None:
        raise EvaluationError(
            f"'{node.text}' compares arrays, which is neither true nor false: use all(...) or any(...)"
        )
    per_element = (
        np.logical_and.reduce(np.broadcast_arrays(*links)) if arrays else all(map(bool, links))
    )
    holds = bool(np.any(per_element) if quantifier == "any" else np.all(per_element))

    margins = [_margin(op, values[i], values[i + 1]) for i, op in enumerate(node.ops)]
    margin = (
        None
        if any(m is None for m in margins)
        else np.minimum.reduce(np.broadcast_arrays(*margins))
    )

    measured = next((i for i, n in enumerate(node.operands) if not isinstance(n, Const)), 0)
    subject = node.operands[measured]
    needs = f"{quantifier} " if quantifier else ""
    if len(node.ops) == 1:
        other = 1 - measured
        op = node.ops[0] if measured == 0 else _MIRRORED[node.ops[0]]
        needs += f"{op} {_describe_operand(node.operands[other], values[other])}"
    else:
        needs += node.text
    detail = f"{subject.text} = {format_quantity(values[measured])} (needs {needs})"
    reading = _read_operand(subject, values[measured])
    if len(node.ops) == 1:
        other = 1 - measured
        digits = _distinct_digits(values[measured], values[other])
        reading = _read_operand(subject, values[measured], digits)
        bound = _read_operand(node.operands[other], values[other], digits)
        needs_words = f"{quantifier + ' ' if quantifier else ''}{_OP_WORDS[op]} {bound}"
        reading += f" (needs {needs_words})"
    return _Verdict(holds, values[measured], detail, _reduce_margin(margin, quantifier or "all"),
                    reading)


def _approx_verdict(node: Approx, results: Results, quantifier: str | None) -> _Verdict:
    actual, expected, diff, tol = node.measure(results)
    within = diff <= tol
    holds = bool(np.any(within) if quantifier == "any" else np.all(within))
    tolerances = [
        f"{name} {powers_of_ten(n.text)}" for name, n in (("rel", node.rel), ("abs", node.abs))
        if n is not None
    ]
    allowed = " and ".join(tolerances) or "rel 10⁻⁶"
    needs = f"{quantifier} " if quantifier else ""
    detail = (
        f"{node.actual.text} = {format_quantity(actual)}"
        f" (needs {needs}within {allowed} of {_describe_operand(node.expected, expected)})"
    )
    margins = [f"{number(float(n.value) * 100)}%" if name == "rel" else f"±{quantity(n.value)}"
               for name, n in (("rel", node.rel), ("abs", node.abs)) if isinstance(n, Const)]
    if not margins:  # pytest.approx's default, or tolerances computed from the results
        margins = ["10⁻⁴%"] if node.rel is None and node.abs is None else [allowed]
    reading = (f"{_read_operand(node.actual, actual)} (needs {needs}within "
               f"{' and '.join(margins)} of {_read_operand(node.expected, expected)})")
    return _Verdict(holds, actual, detail, _reduce_margin(tol - diff, quantifier or "all"),
                    reading)


def _verdict(node: Node, results: Results) -> _Verdict:
    if isinstance(node, Compare):
        return _compare_verdict(node, results, None)
    if isinstance(node, Approx):
        return _approx_verdict(node, results, None)
    if isinstance(node, Call) and node.func in ("all", "any") and isinstance(node.args[0], Compare):
        return _compare_verdict(node.args[0], results, node.func)
    if isinstance(node, Call) and node.func in ("all", "any") and isinstance(node.args[0], Approx):
        return _approx_verdict(node.args[0], results, node.func)
    if isinstance(node, Logic):
        return _logic_verdict(node, results)
    if isinstance(node, Unary) and node.op == "not":
        inner = _verdict(node.operand, results)
        margin = None if inner.margin is None else -inner.margin
        return _Verdict(
            not inner.holds, inner.value, f"{inner.detail}, which must not hold", margin,
            f"{inner.reading}, which must not hold")
    value = node.eval(results)
    holds = truth(value, node.text)
    return _Verdict(holds, value, f"{node.text} is {holds}", None, "yes" if holds else "no")


def _logic_verdict(node: Logic, results: Results) -> _Verdict:
    # Short-circuits like evaluation, so a guard (`len(x) > 2 and x[2] > 0`) protects the rest.
    seen: list[_Verdict] = []
    for operand in node.operands:
        verdict = _verdict(operand, results)
        seen.append(verdict)
        if verdict.holds == (node.op == "or"):
            break
    margins = [v.margin for v in seen]
    margin = None if None in margins else (max if node.op == "or" else min)(margins)
    deciding = seen[-1]
    holds = deciding.holds
    if node.op == "and" and holds or node.op == "or" and not holds:
        detail = "; ".join(v.detail for v in seen)
        return _Verdict(holds, seen[0].value, detail, margin, "; ".join(v.reading for v in seen))
    return _Verdict(holds, deciding.value, deciding.detail, margin, deciding.reading)


@dataclass(frozen=True)
class _Judgement:
    seed: int | None
    verdict: _Verdict | None
    problem: str | None  # why it could not be evaluated


def _run_seed(run: AnswerRun, demos: set[str]) -> int | None:
    """The seed a run used for these demonstrations (the file's own seeds when run.seed is None)."""
    if run.seed is not None:
        return run.seed
    seeds = {run.results[d].seed for d in demos if d in run.results}
    return seeds.pop() if len(seeds) == 1 else None


def demos_ran(expr: Expression, run: AnswerRun) -> bool:
    """Whether every demonstration ``expr`` reads ran without error in ``run``."""
    return all(d in run.results and run.results[d].error is None for d in expr.demos())


def _results_or_problem(expr: Expression, run: AnswerRun) -> tuple[Results | None, str | None]:
    """The results an expression reads, or why they are missing (naming file:line)."""
    for demo in sorted(expr.demos()):
        result = run.results.get(demo)
        if result is None:
            return None, f"demonstration '{demo}' did not run: its block has errors"
        if result.values is None:
            return None, result.error or f"demonstration '{demo}' failed"
    return {
        name: result.values for name, result in run.results.items() if result.values is not None
    }, None


def _judge(claim: Claim, run: AnswerRun) -> _Judgement:
    seed = _run_seed(run, claim.expr.demos())
    results, problem = _results_or_problem(claim.expr, run)
    if problem is not None:
        return _Judgement(seed, None, problem)
    try:
        return _Judgement(seed, _verdict(claim.expr.root, results), None)
    except EvaluationError as exc:
        return _Judgement(seed, None, str(AnswerError(claim.expr.location, str(exc))))


def _severity(judgement: _Judgement) -> tuple:
    """Sort key: the worst judgement first (unevaluable, then failing, then least margin)."""
    verdict = judgement.verdict
    if verdict is None:
        return (0, 0.0)
    margin = verdict.margin
    if verdict.holds:
        return (2, math.inf if margin is None else margin)
    return (1, -math.inf if margin is None else margin)


def evaluate_claim(claim: Claim, runs: Sequence[AnswerRun]) -> ClaimOutcome:
    """The claim's outcome over ``runs`` (one per seed). A check holds only if it holds for
    every run; a finding is evaluated once, on the sample the runs make."""
    if claim.kind == "finding":
        return _evaluate_finding(claim, runs)
    if not runs:
        raise ValueError(f"{claim.location}: claim '{claim.id}' needs at least one run to check")
    judgements = [_judge(claim, run) for run in runs]
    worst = min(judgements, key=_severity)  # min keeps the first of equals: the lowest seed
    seeds = tuple(j.seed for j in judgements if j.seed is not None)
    if worst.verdict is None:
        return ClaimOutcome(claim, None, None, worst.problem, worst.seed, seeds)
    verdict = worst.verdict
    return ClaimOutcome(claim, verdict.holds, verdict.value, verdict.detail, worst.seed, seeds,
                        reading=verdict.reading)


def evaluate_claims(answer: Answer, runs: Sequence[AnswerRun]) -> list[ClaimOutcome]:
    return [evaluate_claim(claim, runs) for claim in answer.claims]


def _sample_or_problem(expr: Expression, runs: Sequence[AnswerRun]
                       ) -> tuple[SeedSample | None, str | None]:
    """The sample of seeds an expression over seeds reads, or why it cannot be had."""
    if len(runs) < 2:
        return None, (f"measured over a sample of seeds, and {len(runs)} "
                      f"run{'s' * (len(runs) != 1)} given")
    per_seed = []
    for run in runs:
        results, problem = _results_or_problem(expr, run)
        if problem is not None:
            return None, f"{problem} at seed {_run_seed(run, expr.demos())}"
        per_seed.append(results)
    seeds = tuple(_run_seed(run, expr.demos()) for run in runs)
    return SeedSample(seeds, tuple(per_seed)), None


def _effect(expr: Expression, sample: SeedSample) -> Effect | None:
    """The quantity a finding measures (its first aggregate's argument; of a frac(...) the
    measured side of the comparison) over the sample, when it is one number per seed."""
    node = expr.aggregates()[0].arg
    if isinstance(node, Compare):
        node = next((n for n in node.operands if not isinstance(n, Const)), node)
    try:
        values = np.asarray([node.eval(results) for results in sample.per_seed])
        if values.ndim != 1 or values.dtype.kind not in "biuf":
            return None
        return Effect.of(node.text, sample.seeds, values)
    except (EvaluationError, TypeError, ValueError):
        return None


def _evaluate_finding(claim: Claim, runs: Sequence[AnswerRun]) -> ClaimOutcome:
    sample, problem = _sample_or_problem(claim.expr, runs)
    seeds = tuple(s for s in (_run_seed(r, claim.expr.demos()) for r in runs) if s is not None)
    if problem is not None:
        return ClaimOutcome(claim, None, None, str(AnswerError(claim.location, problem)), None,
                            seeds)
    try:
        verdict = _verdict(claim.expr.root, sample)
    except EvaluationError as exc:
        return ClaimOutcome(claim, None, None, str(AnswerError(claim.expr.location, str(exc))),
                            None, seeds)
    return ClaimOutcome(claim, verdict.holds, verdict.value, verdict.detail, None, seeds,
                        _effect(claim.expr, sample), verdict.reading)


def describe_effect(effect: Effect) -> str:
    """'mean 0.029, 95% CI 0.004 to 0.053 over 20 seeds; per seed −0.039 to 0.121'.

    Every number to one decimal place, that of the interval's width to two significant
    digits: an estimate is quoted no finer than its uncertainty, and the five numbers read
    alike ("0.455 to 0.490", not "0.455 to 0.49"). Three significant digits each when the
    interval has no finite width or the numbers need powers of ten.
    """
    low, high = effect.ci
    spread = (min(effect.values), max(effect.values))
    numbers = (effect.mean, low, high, *spread)
    width = high - low
    decimals = 1 - math.floor(math.log10(width)) if 0 < width < math.inf else None
    if (decimals is not None and decimals <= PLACES_SHOWN
            and all(abs(x) < 1e5 for x in numbers)):
        def f(x: float) -> str:
            text = f"{x:.{max(decimals, 0)}f}"
            return (text.lstrip("-") if float(text) == 0 else text).replace("-", "−")
    else:
        def f(x: float) -> str:
            return number(x, 3)
    return (f"mean {f(effect.mean)}, {LEVEL:.0%} CI {f(low)} to {f(high)} over "
            f"{len(effect.seeds)} seeds; per seed {f(spread[0])} to {f(spread[1])}")


def describe_outcome(outcome: ClaimOutcome) -> str:
    """One line naming the place: 'answers/x.md:42: claim "..." failed: d.r = 2.1 (needs >= 3) at seed 4'."""
    verdict = "holds" if outcome.holds else "failed"
    seed = f" at seed {outcome.seed}" if outcome.seed is not None else ""
    return (
        f'{outcome.claim.location}: claim "{outcome.claim.text}" {verdict}: {outcome.detail}{seed}'
    )


# --- inline values ------------------------------------------------------------------------


@dataclass(frozen=True)
class InlineResult:
    value: InlineValue
    text: str  # what the page shows: the formatted value, or INLINE_ERROR_MARKER
    error: str | None  # 'answers/x.md:10: inline value {{d.x:.2f}} failed: ...'
    seed: int | None


def format_value(value: Any, spec: str) -> str:
    """``value`` formatted with ``spec`` for prose: arrays element by element, an effect as its
    mean with the confidence interval and the number of seeds; numbers with a real minus sign
    and powers of ten as ×10⁻³ (a spec like ``.1e`` gives "1.3×10⁻³")."""
    if isinstance(value, Effect):
        low, high = value.ci
        return (f"{format_value(value.mean, spec)} ({LEVEL:.0%} CI {format_value(low, spec)} to "
                f"{format_value(high, spec)}, {len(value.seeds)} seeds)")
    if isinstance(value, np.ndarray) and value.ndim > 0:
        return "[" + ", ".join(format_value(x, spec) for x in value) + "]"
    if isinstance(value, (np.generic, np.ndarray)):
        value = value.item()
    text = format(value, spec)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        text = powers_of_ten(text).replace("-", "−")
    return text


def format_inline_value(inline: InlineValue, runs: Sequence[AnswerRun]) -> InlineResult:
    """The value on ``runs``: one run, or the sample for a value over seeds (``effect(...)``)."""
    seed = _run_seed(runs[0], inline.expr.demos()) if len(runs) == 1 else None

    def failed(reason: str) -> InlineResult:
        message = f"{inline.location}: inline value {{{{{inline.source}}}}} failed: {reason}"
        return InlineResult(inline, INLINE_ERROR_MARKER, message, seed)

    if inline.expr.over_seeds:
        results, problem = _sample_or_problem(inline.expr, runs)
    else:
        results, problem = _results_or_problem(inline.expr, runs[0])
    if problem is not None:
        return failed(problem)
    try:
        value = inline.expr.evaluate(results)
    except AnswerError as exc:
        return failed(exc.message)
    if is_nan(value):
        return failed(f"'{inline.expr.source}' is NaN")
    try:
        return InlineResult(inline, format_value(value, inline.format_spec), None, seed)
    except (TypeError, ValueError) as exc:
        return failed(f"cannot format {format_quantity(value)} with '{inline.format_spec}': {exc}")


PENDING = "…"  # shown for a value over seeds while its sample is being computed


def format_inline_values(answer: Answer, run: AnswerRun, sample: Sequence[AnswerRun] = ()
                         ) -> list[InlineResult]:
    """Every inline value of ``answer``, in the order they appear: on ``run``, or on the
    ``sample`` of runs for a value over seeds (pending while the sample is empty)."""
    return [InlineResult(inline, PENDING, None, None) if inline.expr.over_seeds and not sample
            else format_inline_value(inline, sample if inline.expr.over_seeds else [run])
            for inline in answer.inline_values]
