"""Beyond one machine: one section per part, each with its flag; every section by default.

    .venv/bin/python bench/bench_jobs.py [--build] [--build-jobs 2] [--build-answers K]
                                         [--build-data DIR]

``--build``: the static build (``kb build``) of the project's answers, timed three ways:

- cold: an empty demonstration cache (a temporary data folder, removed afterwards) and an
  empty output folder: every demonstration, figure and finding's sample is computed;
- warm: the cache that build filled, a new output folder: nothing computed, every file
  written;
- unchanged: the same cache and output folder again: nothing computed, nothing written
  (what a rebuild after no change costs).

Answers are built ``--build-jobs`` at a time. The cold build computes every answer's sample
of seeds (the work of ``kb check --jobs 2`` with each answer's sample, plus figures); to keep
it bounded, ``--build-answers K`` builds only the first K answers by slug, and
``--build-data DIR`` uses the cache of an existing data folder (e.g. ``.kb``, as a server's
warm-up leaves it) instead of an empty one, skipping the cold build. Prints a table; nothing
here is a test.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from kb.answers.parse import load_answers
from kb.build.build import BuildReport, build_site
from kb.config import Settings

BASE_URL = "https://kb.example.org/course/kb/"


def build_section(args: argparse.Namespace) -> None:
    settings = Settings.from_env()
    every = sorted(load_answers(settings.answers_dir), key=lambda a: a.slug)
    chosen = every[: args.build_answers] if args.build_answers else every
    with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp:
        answers = Path(tmp) / "answers"
        answers.mkdir()
        for answer in chosen:
            shutil.copy(answer.path, answers / answer.path.name)
        data = Path(args.build_data) if args.build_data else Path(tmp) / "data"
        settings = settings.replace(answers_dir=answers, data_dir=data)
        print(f"static build of {len(chosen)} answers, {args.build_jobs} at a time, "
              f"cache in {settings.cache_dir}")
        builds = [("warm", "site-warm"), ("unchanged", "site-warm")]
        if not args.build_data:
            builds.insert(0, ("cold", "site"))
        rows = []
        for name, out in builds:
            start = time.perf_counter()
            report = build_site(settings, Path(tmp) / out, base_url=BASE_URL,
                                jobs=args.build_jobs, progress=lambda line: None)
            rows.append((name, time.perf_counter() - start, report))
    print(f"{'cache':<10} {'seconds':>8} {'runs computed':>14} {'from cache':>11} "
          f"{'files written':>14} {'unchanged':>10} {'slowest answer':>22}")
    for name, seconds, report in rows:
        print(f"{name:<10} {seconds:8.1f} {report.computed:14d} {report.cached:11d} "
              f"{len(report.written):14d} {report.unchanged:10d} {_slowest(report):>22}")


def _slowest(report: BuildReport) -> str:
    if not report.answers:
        return "-"
    slowest = max(report.answers, key=lambda a: a.seconds)
    return f"{slowest.slug[:14]} {slowest.seconds:.1f} s"


SECTIONS: dict[str, Callable[[argparse.Namespace], None]] = {"build": build_section}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name in SECTIONS:
        parser.add_argument(f"--{name}", action="store_true", help=f"run the {name} section")
    parser.add_argument("--build-jobs", type=int, default=2, metavar="N",
                        help="answers built at a time (default 2)")
    parser.add_argument("--build-answers", type=int, default=0, metavar="K",
                        help="only the first K answers by slug (default: all)")
    parser.add_argument("--build-data", metavar="DIR",
                        help="the cache of this data folder, not an empty one (no cold build)")
    args = parser.parse_args(argv)
    chosen = [name for name in SECTIONS if getattr(args, name)] or list(SECTIONS)
    for name in chosen:
        print(f"== {name} ==")
        SECTIONS[name](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
