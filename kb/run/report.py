"""The report of ``kb check``: every answer evaluated over the chosen seeds, with its claim
outcomes, its other failures (each one line starting with ``file:line``), the demonstrations'
run times, and JUnit XML (one testcase per claim and per other failure).

Counting: every claim is one test, passed or failed (a claim that cannot be evaluated,
e.g. because its demonstration failed, failed). Every other problem is one failure too (the
rule is ``kb.run.evaluate``'s): each error in an answer file, each demonstration that fails
(at any seed), and each inline value that cannot be computed although its demonstrations ran.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from kb.run.cache import Cache
from kb.run.claims import describe_effect, describe_outcome
from kb.run.evaluate import Problem, evaluate
from kb.run.executor import Executor, Limits, die_with_parent
from kb.model import Answer, ClaimOutcome, DemoResult
from kb.answers.parse import display_path


@dataclass(frozen=True)
class DemoTiming:
    demonstration: str
    location: str
    seconds: tuple[float, ...]  # per seed: compute time (of the original run when cached)
    cached: bool  # every run came from the cache
    failed: bool


@dataclass
class AnswerReport:
    slug: str
    path: str  # as shown to people
    outcomes: list[ClaimOutcome]
    problems: list[Problem]  # answer file errors, failed demonstrations and inline values
    timings: list[DemoTiming]
    seconds: float

    @property
    def passed(self) -> int:
        return sum(1 for outcome in self.outcomes if outcome.holds)

    def failures(self) -> list[tuple[int, str]]:
        """Every failure as (line, message), in file order."""
        found = [(p.line, p.describe()) for p in self.problems]
        found += [
            (o.claim.location.line, describe_outcome(o)) for o in self.outcomes if not o.holds
        ]
        return sorted(found, key=lambda pair: pair[0])


def _progress(slug: str, result: DemoResult) -> None:
    how = "FAILED" if result.error else ("cached" if result.cached else f"{result.seconds:.2f} s")
    print(f"  {slug}/{result.demonstration} seed {result.seed}: {how}", file=sys.stderr, flush=True)


def check_answer(
    answer: Answer, seeds: list[int], cache_dir: Path, fresh: bool, timeout: float,
    limits: Limits = Limits(), failure_ttl: float = 600.0,
) -> AnswerReport:
    """Run ``answer``'s demonstrations for every seed and evaluate everything that uses them."""
    started = time.perf_counter()
    executor = Executor(Cache(cache_dir, failure_ttl=failure_ttl), fresh=fresh, timeout=timeout,
                        limits=limits)
    evaluation = evaluate(answer, executor, seeds,
                          on_result=lambda result: _progress(answer.slug, result))
    timings = []
    for demo in answer.demonstrations:
        results = [run.results[demo.name] for run in evaluation.runs]
        timings.append(DemoTiming(demo.name, str(demo.location), tuple(r.seconds for r in results),
                                  all(r.cached for r in results), any(r.error for r in results)))
    return AnswerReport(answer.slug, display_path(answer.path), evaluation.claims,
                        evaluation.problems, timings, time.perf_counter() - started)


def check_answers(samples: list[tuple[Answer, list[int]]], cache_dir: Path, *, fresh: bool,
                  timeout: float, jobs: int = 1, limits: Limits = Limits(),
                  failure_ttl: float = 600.0) -> list[AnswerReport]:
    """Every answer checked over its seeds, ``jobs`` answers at a time (in worker processes,
    which die with this one: killing ``kb check`` leaves no worker or computation behind)."""
    options = (cache_dir, fresh, timeout, limits, failure_ttl)
    if jobs == 1 or len(samples) <= 1:
        return [check_answer(a, seeds, *options) for a, seeds in samples]
    # "fork", as the executor uses: experiments registered at run time exist in workers.
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(min(jobs, len(samples)), mp_context=context,
                             initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
        futures = [pool.submit(check_answer, a, seeds, *options) for a, seeds in samples]
        return [future.result() for future in futures]


def timing_table(reports: list[AnswerReport]) -> list[str]:
    rows = [
        (max(t.seconds, default=0.0), len(t.seconds), f"{r.slug}/{t.demonstration}", t)
        for r in reports
        for t in r.timings
    ]
    rows.sort(key=lambda row: (-row[0], row[2]))
    lines = ["demonstration run times, slowest first (seconds: slowest seed):"]
    for seconds, runs, name, timing in rows:
        note = " failed" if timing.failed else (" cached" if timing.cached else "")
        lines.append(f"  {seconds:8.3f}  x{runs}  {name} ({timing.location}){note}")
    return lines


def write_junit(reports: list[AnswerReport], path: Path) -> None:
    """JUnit XML: one testsuite per answer, one testcase per claim and per other failure."""
    root = ET.Element("testsuites", name="kb check")
    total = failed = 0
    for report in reports:
        suite = ET.SubElement(root, "testsuite", name=report.slug, time=f"{report.seconds:.3f}")
        cases = 0
        for outcome in report.outcomes:
            # Findings and checks apart: by class name, and the finding's effect as output.
            case = _testcase(suite, report, outcome.claim.id, outcome.claim.location.line,
                             outcome.claim.kind)
            if outcome.effect is not None:
                ET.SubElement(case, "system-out").text = effect_line(outcome)
            if not outcome.holds:
                ET.SubElement(case, "failure", message=describe_outcome(outcome)).text = (
                    outcome.detail
                )
                failed += 1
            cases += 1
        for problem in report.problems:
            case = _testcase(suite, report, problem.name, problem.line)
            ET.SubElement(case, "failure", message=problem.describe()).text = problem.describe()
            failed += 1
            cases += 1
        suite.set("tests", str(cases))
        suite.set("failures", str(cases - report.passed))
        suite.set("errors", "0")
        total += cases
    root.set("tests", str(total))
    root.set("failures", str(failed))
    tree = ET.ElementTree(root)
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)


def effect_line(outcome: ClaimOutcome) -> str:
    """'finding faster: bn.gap mean 0.10, 95% CI 0.05 to 0.15 over 10 seeds; per seed ...'."""
    effect = outcome.effect
    measured = f"{effect.quantity} {describe_effect(effect)}" if effect else outcome.detail
    return f"{outcome.claim.kind} {outcome.claim.id}: {measured}"


def _testcase(suite: ET.Element, report: AnswerReport, name: str, line: int,
              kind: str | None = None) -> ET.Element:
    return ET.SubElement(
        suite,
        "testcase",
        classname=f"answers.{report.slug}" + (f".{kind}s" if kind else ""),
        name=name,
        file=report.path,
        line=str(line),
    )
