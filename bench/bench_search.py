"""Search: index build, incremental update and query latency by kind of query.

Over the answers folder (default: the project's), or with ``--synthetic N`` over N answers
made deterministically from it: the real answers, then copies of them (front matter,
headings, tables, demonstration and claim blocks, paragraphs with values) whose other
paragraphs are sentences drawn from every answer, under new slugs, titles, questions and
summaries. They are written as ``.md`` files and read by the real parser, so the index sees
the regions real answers have.

Prints the full build time (``SearchIndex.build`` on parsed answers, wall clock and CPU), the
time of ``refresh_index`` after one answer file changed, one was added and one removed (what
the service does when the files change: the parse of the changed files included) and of the
first query after it, and query latencies through ``SearchIndex.search`` (snippets
included): each query once on a new ``SearchIndex`` ("first time": nothing read or
remembered yet), then each kind of query ``--reps`` times where "cold" runs forget
remembered results first (when the index keeps any; what was read from the index for earlier
queries stays), and all of them again ("repeated": a remembered result, where there is one).

    .venv/bin/python bench/bench_search.py [--answers answers/] [--reps 5]
    .venv/bin/python bench/bench_search.py --synthetic 10000 --workdir /tmp/kb-synthetic

``--workdir`` keeps the generated files and their parse (a pickle) between runs: parsing
10,000 files takes minutes and is not what is measured. ``--profile FILE`` writes the
cProfile statistics of the build and of the queries to FILE.build and FILE.query.
"""
from __future__ import annotations

import argparse
import cProfile
import pickle
import random
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from kb.answers.parse import load_answers
from kb.config import PROJECT_ROOT
from kb.search.index import SearchIndex, answers_fingerprint
try:
    from kb.search.index import answer_files
except ImportError:  # an index without per-file hashes: every refresh is a full build
    answer_files = None
try:
    from kb.search.index import load_english_words
except ImportError:  # search code from before servers read the word list at start
    def load_english_words() -> None:
        pass
from kb.search.refresh import refresh_index

SHORT = ["covariate shift", "batch norm dropout", "gamma beta", "running mean",
         "mini batch size", "backward gradient", "internal covariate shift", "black cats",
         "regularization", "later layers", "learning rate", "test time", "noise", "epsilon",
         "data augmentation", "vanishing gradients", "hidden units", "moving average",
         "normalize inputs", "generalization"]
QUESTIONS = [
    "what does it mean that the weights of layer 10 are more robust to changes in layer 1",
    "batch norm weakens the coupling between early and later layers",
    "black cats vs colored cats example",
    "what is covariate shift and why is it a problem for hidden layers",
    "why is the regularization effect of batch norm only slight",
    "bigger mini-batch 512 instead of 64 reduces the regularization",
    "how is batch norm noise similar to dropout",
    "downstream hidden units not rely too much on any one hidden unit",
    "why wouldn't backprop cancel out batch norm using the beta and gamma parameters",
    "can gradient descent learn γ and β to undo the normalization",
    "could a shift in the distribution of the features during training favor better "
    "generalization",
    "isn't a changing distribution in training like data augmentation",
    "small batch size of 32 gives noisy estimates of mean and variance, why not use the "
    "exponentially weighted average during training",
    "the network is still learning the distribution with gamma and beta so how does it solve "
    "internal covariance shift",
    "how can BN fix ICS if the distribution of each layer keeps changing",
    "does batch norm adapt to a shifted test set",
    "how does batch norm speed up training like input features normalization",
    "why is the effect more significant in later layers than earlier ones",
    "gradient of the loss with respect to the input x_i of a batch normalized layer",
    "does 1/sqrt(sigma^2 + epsilon) avoid exploding or vanishing gradients",
]


def _misspelled(query: str) -> str:
    """``query`` with two neighbouring letters of its longest word swapped."""
    words = query.split()
    i = max(range(len(words)), key=lambda k: len(words[k]))
    word = words[i]
    j = len(word) // 2
    words[i] = word[:j - 1] + word[j] + word[j - 1] + word[j + 1:]
    return " ".join(words)


MISSPELLED = ([_misspelled(q) for q in SHORT[:10] + QUESTIONS[:10]]
              + ["covarient shift cats", "batchnrom backward gradiant",
                 "regularisation efect of mini batch size", "dropuot noise",
                 "exponentialy weighted averge during training"])
_rng = random.Random(0)
HOSTILE = ['"AND OR NOT -+*', "", "ä€😀 \x00", "x" * 10_240, "covariate shift " * 640,
           "ä€😀 " * 1_024, "dropuot batchnrom covarient " * 400, "a" * 10_000,
           "(batch OR norm) AND NOT gamma^2 ~ title:dropout* [a TO z] {x}",
           "\udcff" * 100, "\x00\x07" * 5_000, "the of and " * 1_000,
           " ".join(_rng.choice(['"', "AND", "OR", "NOT", "-", "+", "*", "?", "~", "^", ":",
                                 "(", ")", "batch", "norm", "γ", "σ²"]) for _ in range(2_000)),
           "".join(chr(_rng.randrange(0x20, 0x2FFF)) for _ in range(5_000)),
           " ".join("".join(_rng.choice("abcdefghijklmnopqrstuvwxyz")
                            for _ in range(_rng.randrange(4, 12))) for _ in range(1_200))]
QUERIES = {"short": SHORT, "question": QUESTIONS, "misspelled": MISSPELLED, "hostile": HOSTILE}


# --- synthetic answers -----------------------------------------------------------------------

_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_NOT_PROSE = re.compile(r" {0,3}(#|\||\$\$|[-*+] |\d+[.)] |>| {4}|```|~~~)")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z*(])")


def _paragraphs(body: str) -> list[str]:
    """The body cut at blank lines outside fenced blocks."""
    paragraphs, current, fence = [], [], None
    for line in body.split("\n"):
        opening = _FENCE.match(line)
        if fence is None and opening:
            fence = opening.group(1)
        elif fence is not None and line.strip().startswith(fence[0] * len(fence)) \
                and not line.strip().strip(fence[0]):
            fence = None
        if fence is None and not line.strip():
            if current:
                paragraphs.append("\n".join(current))
                current = []
        else:
            current.append(line)
    if current:
        paragraphs.append("\n".join(current))
    return paragraphs


def _replaceable(paragraph: str) -> bool:
    """Plain prose without values: its sentences can be swapped for others."""
    return not _NOT_PROSE.match(paragraph) and "{{" not in paragraph and "$$" not in paragraph


def _sentences(paragraph: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(" ".join(paragraph.split()))
            if s.count("$") % 2 == 0 and s.count("`") % 2 == 0]


def write_synthetic(source: Path, count: int, folder: Path) -> None:
    """``count`` answer files in ``folder``: the real ones first, then recombinations."""
    bases = []
    for path in sorted(source.glob("*.md")):
        _, front, body = path.read_text(encoding="utf-8").split("---\n", 2)
        bases.append((path.stem, yaml.safe_load(front), _paragraphs(body)))
    pool = [s for _, _, paragraphs in bases for p in paragraphs if _replaceable(p)
            for s in _sentences(p)]
    plain = [s for s in pool if "$" not in s and "`" not in s and "*" not in s]
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.glob("*.md"))[:count]:
        shutil.copy(path, folder / path.name)
    for i in range(len(bases), count):
        rng = random.Random(i)
        stem, meta, paragraphs = bases[i % len(bases)]
        slug = f"{stem}-{i:05d}"
        words = rng.choice(plain).rstrip(".!?:").split()
        start = rng.randrange(max(1, len(words) - 5))
        title = " ".join(words[start:start + rng.randrange(5, 11)])
        front = {
            "slug": slug,
            "title": title[:1].upper() + title[1:] + "?",
            "question": " ".join(rng.sample(plain, 2)),
            "tags": meta.get("tags", []),
            "summary": rng.choice([s for s in plain if len(s) <= 240]),
        }
        # An answer comes from a forum thread or from learners' questions.
        front.update({key: meta[key] for key in ("thread", "source") if key in meta})
        if "seeds" in meta:
            front["seeds"] = meta["seeds"]
        body = "\n\n".join(
            " ".join(rng.choice(pool) for _ in _sentences(p) or [p]) if _replaceable(p) else p
            for p in paragraphs)
        text = ("---\n" + yaml.safe_dump(front, sort_keys=False, allow_unicode=True, width=100)
                + "---\n\n" + body + "\n")
        (folder / f"{slug}.md").write_text(text, encoding="utf-8")


def synthetic_answers(source: Path, count: int, workdir: Path) -> tuple[Path, list]:
    """The folder of ``count`` synthetic answers under ``workdir`` and their parse (both
    made once and kept)."""
    folder = workdir / f"answers-{count}"
    parsed = workdir / f"answers-{count}.pickle"
    if not parsed.exists():
        shutil.rmtree(folder, ignore_errors=True)
        write_synthetic(source, count, folder)
        started = time.perf_counter()
        answers = load_answers(folder)
        print(f"parsed {len(answers)} files in {time.perf_counter() - started:.1f} s")
        parsed.write_bytes(pickle.dumps(answers))
    return folder, pickle.loads(parsed.read_bytes())


# --- measuring -------------------------------------------------------------------------------

def _percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _row(name: str, seconds: list[float]) -> str:
    ordered = sorted(seconds)
    return (f"{name:32} {1000 * statistics.median(ordered):9.1f} "
            f"{1000 * _percentile(ordered, 0.99):9.1f} {len(ordered):6d}")


def _forget(index: SearchIndex) -> None:
    forget = getattr(index, "forget_results", None)
    if forget is not None:
        forget()


def _timed_queries(index: SearchIndex, queries: list[str], reps: int, cold: bool) -> list[float]:
    times = []
    for _ in range(reps):
        for query in queries:
            if cold:
                _forget(index)
            started = time.perf_counter()
            index.search(query)
            times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=Path, default=PROJECT_ROOT / "answers")
    parser.add_argument("--synthetic", type=int, metavar="N",
                        help="measure N answers made from the answers folder")
    parser.add_argument("--workdir", type=Path,
                        help="keep the synthetic answers and their parse here")
    parser.add_argument("--reps", type=int, default=5, help="timed runs of each query")
    parser.add_argument("--builds", type=int, default=1, help="timed full builds")
    parser.add_argument("--profile", type=Path, help="write cProfile statistics here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        if args.synthetic:
            workdir = args.workdir or scratch
            source, answers = synthetic_answers(args.answers, args.synthetic, workdir)
        else:
            source, answers = args.answers, load_answers(args.answers)
        # refresh_index works on a copy of the files, which it edits.
        folder = scratch / "answers"
        shutil.copytree(source, folder)
        # Files changed in the last two seconds are hashed again at every refresh (their stat
        # cannot be trusted yet); answer files are older than that when an index is built.
        time.sleep(2.1)
        index = SearchIndex(scratch / "index")
        print(f"{len(answers)} answers from {source}")
        print(f"{'':32} {'seconds':>9}")
        builds, cpu = [], []
        profiler = cProfile.Profile() if args.profile else None
        for _ in range(args.builds):
            started, cpu_started = time.perf_counter(), time.process_time()
            if profiler:
                profiler.enable()
            if answer_files is None:
                index.build(answers, answers_fingerprint(folder))
            else:
                index.build(answers, answers_fingerprint(folder), answer_files(folder))
            if profiler:
                profiler.disable()
            builds.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
        if profiler:
            profiler.dump_stats(f"{args.profile}.build")
        print(f"{'full build (parsed answers)':32} {statistics.median(builds):9.2f}   "
              f"CPU {statistics.median(cpu):.2f} s")

        victim = folder / f"{answers[len(answers) // 2].slug}.md"
        changed = victim.read_text(encoding="utf-8").replace(
            "\n\n", "\n\nZeppelins are rare here. ", 1)
        edits = [
            ("one answer changed", victim, changed),
            ("one answer added", folder / "zeppelin-answer.md",
             changed.replace(f"slug: {victim.stem}", "slug: zeppelin-answer", 1)),
            ("one answer removed", folder / "zeppelin-answer.md", None),
        ]
        for name, path, text in edits:
            if text is None:
                path.unlink()
            else:
                path.write_text(text, encoding="utf-8")
            started = time.perf_counter()
            refresh_index(index, folder)
            seconds = time.perf_counter() - started
            started = time.perf_counter()
            found = [hit.slug for hit in index.search("zeppelins", limit=3).results]
            first = time.perf_counter() - started
            print(f"{'refresh: ' + name:32} {seconds:9.2f}   then the first query "
                  f"{first:.2f} s: zeppelins -> {found}")

        print(f"{'':32} {'p50 ms':>9} {'p99 ms':>9} {'runs':>6}")
        # Nothing remembered yet (a new object reads the index afresh): each query once. The
        # English word list is read as a server reads it, at start (kb.web.warm).
        load_english_words()
        fresh = SearchIndex(index.index_dir)
        every = [query for queries in QUERIES.values() for query in queries]
        print(_row("query, first time: all kinds", _timed_queries(fresh, every, 1, False)))
        index.search("warm up")
        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        for kind, queries in QUERIES.items():
            print(_row(f"query, cold: {kind}", _timed_queries(index, queries, args.reps, True)))
        if profiler:
            profiler.disable()
            profiler.dump_stats(f"{args.profile}.query")
        print(_row("query, repeated: all kinds", _timed_queries(index, every, args.reps, False)))


if __name__ == "__main__":
    main()
