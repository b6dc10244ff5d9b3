"""The ``kb`` command line: the front door to checking, indexing, searching and serving.

Each subcommand lives in the module that does its work; this file only parses arguments.
"""
from __future__ import annotations

import argparse
import sys

from kb.config import Settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kb", description=__doc__.splitlines()[0])
    parser.add_argument("--answers", help="folder of answer files (default: the project's answers/)")
    parser.add_argument("--data", help="folder for the index and the cache (default: .kb/)")
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser("check", help="rerun every demonstration and check every claim")
    check.add_argument("slugs", nargs="*", help="only these answers (default: all)")
    check.add_argument("--seeds", type=int, default=1, metavar="K", help="seeds per demonstration")
    check.add_argument("--seed-offset", type=int, default=0, metavar="S", help="first seed")
    check.add_argument("--cached", action="store_true", help="reuse cached results")
    check.add_argument("--junit", metavar="FILE", help="write JUnit XML, one testcase per claim")
    check.add_argument("--jobs", type=int, default=1, metavar="N", help="answers in parallel")
    check.add_argument("--timeout", type=float, default=60.0, metavar="SEC",
                       help="time limit per demonstration run")

    serve = sub.add_parser("serve", help="serve the site on one machine")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)

    sub.add_parser("index", help="rebuild the search index atomically")

    search = sub.add_parser("search", help="search the answers from the command line")
    search.add_argument("query")
    search.add_argument("--limit", type=int, default=10)
    search.add_argument("--json", action="store_true", help="print the JSON of /api/search")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings.from_env(answers_dir=args.answers, data_dir=args.data)
    if args.command == "check":
        from kb.run.report import check_command

        return check_command(settings, args)
    if args.command == "serve":
        from kb.cli.serve import serve_command

        return serve_command(settings, args)
    if args.command == "index":
        from kb.search.refresh import index_command

        return index_command(settings, args)
    if args.command == "search":
        from kb.search.refresh import search_command

        return search_command(settings, args)
    raise AssertionError(args.command)  # argparse refuses unknown commands


if __name__ == "__main__":
    sys.exit(main())
