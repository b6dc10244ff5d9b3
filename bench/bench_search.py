"""Search: index build time over the answers, and query latency by kind of query.

Builds the index of the answers folder (default: the project's) into a temporary folder
``--builds`` times, then runs each query ``--reps`` times through ``SearchIndex.search`` (one
Whoosh searcher per query, snippets included) and prints medians and 95th percentiles.

    .venv/bin/python bench/bench_search.py [--answers answers/] [--reps 50] [--builds 5]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from kb.config import PROJECT_ROOT
from kb.answers.parse import load_answers
from kb.search.index import SearchIndex, answers_fingerprint

QUERIES = {
    "short": ["batch norm dropout", "covariate shift", "gamma beta"],
    "question": ["why does batch norm make training faster than without it",
                 "small batch size of 32 gives noisy estimates of mean and variance"],
    "typos": ["covarient shift", "batchnrom backward gradiant", "regularisation efect"],
    "odd": ['"AND OR NOT -+*', "", "ä€😀 \x00"],
    "10 kB": ["dropuot batchnrom covarient " * 400],
}


def _milliseconds(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"{1000 * statistics.median(ordered):8.2f} {1000 * p95:8.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=Path, default=PROJECT_ROOT / "answers")
    parser.add_argument("--reps", type=int, default=50, help="timed runs of each query")
    parser.add_argument("--builds", type=int, default=5, help="timed index builds")
    args = parser.parse_args()

    answers = load_answers(args.answers)
    with tempfile.TemporaryDirectory() as folder:
        index = SearchIndex(Path(folder) / "index")
        builds = []
        for _ in range(args.builds):
            started = time.perf_counter()
            index.build(answers, answers_fingerprint(args.answers))
            builds.append(time.perf_counter() - started)
        index.search("warm up")

        print(f"{len(answers)} answers from {args.answers}")
        print(f"{'':28} {'median':>8} {'p95':>8}  (ms)")
        print(f"{'build (parsed answers)':28} {_milliseconds(builds)}")
        for kind, queries in QUERIES.items():
            times = []
            for query in queries:
                for _ in range(args.reps):
                    started = time.perf_counter()
                    index.search(query)
                    times.append(time.perf_counter() - started)
            print(f"{'query: ' + kind:28} {_milliseconds(times)}")


if __name__ == "__main__":
    main()
