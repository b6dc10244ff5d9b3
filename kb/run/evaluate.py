"""The one evaluation step: an answer and the seeds/parameters it is shown or checked with ->
its demonstrations' results, its claims' outcomes, its inline values and its problems.

``kb check``, the web service and the pytest plugin all call :func:`evaluate`; they differ
only in what they do with the ``Evaluation`` (print it, render it, turn it into test items).

The one rule of what counts as a problem lives here too: every error in the answer file,
every demonstration that fails (reported once, at its first failing seed), and every inline
value that cannot be computed although the demonstrations it reads ran (a value whose
demonstration failed is explained by that failure and is not reported again).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from kb.model import Answer, AnswerRun, Claim, ClaimOutcome, DemoResult
from kb.run.claims import InlineResult, demos_ran, evaluate_claim, format_inline_values
from kb.run.executor import Executor

OWN_SEEDS: tuple[None] = (None,)  # each demonstration with the seed written in the answer


@dataclass(frozen=True)
class Problem:
    """A failure that is not a claim's: its kind ("file", "demonstration" or "value"), its name
    (a JUnit test name), its Markdown line, its message (one line, starting with file:line)
    and the seed it happened at (None: the answer's own seeds, or a problem of the file)."""

    kind: str
    name: str
    line: int
    message: str
    seed: int | None = None

    def describe(self) -> str:
        """The message, naming the seed when it was one asked for."""
        return self.message if self.seed is None else f"{self.message} at seed {self.seed}"


@dataclass
class Evaluation:
    """An answer evaluated over one or more runs (one per seed)."""

    answer: Answer
    runs: list[AnswerRun]
    claims: list[ClaimOutcome]  # each over every run: it holds only if it holds for all
    values: list[list[InlineResult]]  # per run, every inline value in file order
    problems: list[Problem]
    pending: bool = False  # findings and values over seeds wait for the sample's runs

    @property
    def complete(self) -> bool:
        """Whether every demonstration produced values in every run."""
        return all(r.values is not None for run in self.runs for r in run.results.values())

    def shown_values(self) -> dict[str, str | None]:
        """The first run's inline values by source: the formatted text, None when unavailable."""
        return {v.value.source.strip(): None if v.error else v.text for v in self.values[0]}


def evaluate(
    answer: Answer,
    executor: Executor,
    seeds: Sequence[int | None] = OWN_SEEDS,
    overrides: Mapping[str, Mapping] | None = None,
    on_result: Callable[[DemoResult], None] | None = None,
    sample: Sequence[AnswerRun] | None = None,
) -> Evaluation:
    """Run ``answer``'s demonstrations once per seed (None: the answer's own seeds), with
    ``overrides`` (demonstration -> parameters), and evaluate everything that uses them.

    Checks and inline values are evaluated on every run; findings and values over seeds on
    ``sample``: the runs of the answer's seed sample, by default the runs made here. An empty
    ``sample`` means it is still being computed: findings and values over seeds are pending.
    A bad seed or parameter raises ParameterError (the caller's request is wrong); every other
    problem is in the result. ``on_result`` is told of each demonstration as it ends.
    """
    if not seeds:
        raise ValueError("evaluate needs at least one seed (None: the answer's own)")
    runs = [executor.run(answer, seed, overrides, on_result) for seed in seeds]
    sample = runs if sample is None else list(sample)
    values = [format_inline_values(answer, run, sample) for run in runs]
    claims = [evaluate_claim(claim, sample if claim.kind == "finding" else runs)
              if sample or claim.kind == "check" else _pending(claim, answer)
              for claim in answer.claims]
    pending = not sample and (any(c.kind == "finding" for c in answer.claims)
                              or any(i.expr.over_seeds for i in answer.inline_values))
    return Evaluation(answer, runs, claims, values, _problems(answer, runs, sample, values),
                      pending)


def _pending(claim: Claim, answer: Answer) -> ClaimOutcome:
    count = f"{len(answer.seeds)} " if answer.seeds else ""
    return ClaimOutcome(claim, None, None, f"being measured over the answer's {count}seeds; "
                                           "shown as soon as they are computed", None, ())


def _problems(answer: Answer, runs: list[AnswerRun], sample: list[AnswerRun],
              values: list[list[InlineResult]]) -> list[Problem]:
    problems = [Problem("file", "answer file", e.location.line, str(e)) for e in answer.errors]
    for demo in answer.demonstrations:
        failed = next((run for run in runs if run.results[demo.name].error), None)
        if failed is not None:
            problems.append(Problem("demonstration", f"demonstration {demo.name}",
                                    demo.location.line, failed.results[demo.name].error,
                                    failed.seed))
    for position, inline in enumerate(answer.inline_values):
        for run, shown in zip(runs, values):
            read = sample if inline.expr.over_seeds else [run]
            if shown[position].error and all(demos_ran(inline.expr, r) for r in read):
                problems.append(Problem(
                    "value", f"inline value {{{{{inline.source}}}}} line {inline.location.line}",
                    inline.location.line, shown[position].error,
                    None if inline.expr.over_seeds else run.seed))
                break
    return problems
