"""``kb check``: rerun every demonstration, evaluate every inline value and claim.

Each answer runs with K seeds S..S+K-1 (``--seeds K --seed-offset S``; by default the sample
of seeds the answer declares, from S), which replace the seeds written in the answer: a check
passes only if it holds for every seed, a finding is evaluated once over them all. Results are computed afresh unless ``--cached``. Every failure is printed as one
line starting with ``file:line``; the last line is ``N passed, M failed``. Exit code 0 when
nothing failed, 1 when something did, 2 when the command itself is wrong.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from kb.answers.parse import load_answers
from kb.config import Settings
from kb.model import Answer
from kb.run.executor import Limits
from kb.run.report import check_answers, effect_line, timing_table, write_junit


@click.command(help="Rerun every demonstration; evaluate every inline value and claim.")
@click.argument("slugs", nargs=-1)
@click.option("--seeds", type=click.IntRange(min=1), default=None, metavar="K",
              help="Seeds per answer (default: the sample each answer declares, else 1).")
@click.option("--seed-offset", type=click.IntRange(min=0), default=0, metavar="S",
              show_default=True, help="First seed.")
@click.option("--cached", is_flag=True, help="Reuse cached results.")
@click.option("--junit", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write JUnit XML, one testcase per claim.")
@click.option("--jobs", type=click.IntRange(min=1), default=1, metavar="N", show_default=True,
              help="Answers in parallel.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              metavar="SEC", help="Time limit per demonstration run (default: $KB_DEMO_TIMEOUT, "
                                  "else 60).")
@click.pass_obj
def check(settings: Settings, slugs: tuple[str, ...], seeds: int, seed_offset: int,
          cached: bool, junit: str | None, jobs: int, timeout: float | None) -> int:
    def sample(answer: Answer) -> list[int]:
        return list(range(seed_offset, seed_offset + (seeds or len(answer.seeds) or 1)))

    if not settings.answers_dir.is_dir():
        raise click.UsageError(f"no answers folder at {settings.answers_dir}")
    answers = _select(load_answers(settings.answers_dir), slugs)
    count = f"{len(answers)} answer{'s' if len(answers) != 1 else ''}"
    chosen = (f"seeds {seed_offset}..{seed_offset + seeds - 1}" if seeds
              else f"each over its own sample of seeds from {seed_offset}")
    print(f"kb check: {count}, {chosen}", file=sys.stderr, flush=True)
    timeout = timeout or settings.demo_timeout
    # A longer --timeout asked for here raises the CPU-time limit with it.
    limits = Limits(cpu_seconds=max(settings.demo_cpu, timeout), memory_mib=settings.demo_memory)
    reports = check_answers([(a, sample(a)) for a in answers], settings.cache_dir,
                            fresh=not cached, timeout=timeout, jobs=jobs, limits=limits,
                            failure_ttl=settings.failure_ttl)

    passed = failed = 0
    for report in reports:
        failures = report.failures()
        passed += report.passed
        failed += len(failures)
        print(f"{report.slug}: {report.passed} passed, {len(failures)} failed "
              f"({report.seconds:.1f} s)")
        for outcome in report.outcomes:
            if outcome.claim.kind == "finding" and outcome.holds is not None:
                print(f"  {effect_line(outcome)}")
        for _, message in failures:
            print(message)
    print()
    print("\n".join(timing_table(reports)))
    print()
    print(f"{passed} passed, {failed} failed")
    if junit:
        write_junit(reports, Path(junit))
    return 0 if failed == 0 else 1


def _select(answers: list[Answer], slugs: tuple[str, ...]) -> list[Answer]:
    """The answers named by slug or alias (all when none is named)."""
    by_name = {alias: a for a in answers for alias in a.aliases}
    by_name.update({a.slug: a for a in answers})
    unknown = [slug for slug in slugs if slug not in by_name]
    if unknown:
        known = ", ".join(a.slug for a in answers) or "none"
        raise click.UsageError(f"unknown answer '{unknown[0]}' (known: {known})")
    if not slugs:
        return answers
    chosen = {by_name[slug].slug for slug in slugs}
    return [a for a in answers if a.slug in chosen]
