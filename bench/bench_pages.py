"""Page weight: what a reader's browser downloads to show the first screen of each answer.

    .venv/bin/python bench/bench_pages.py [--slug SLUG ...]

Uses the answers and the data folder of the environment (KB_ANSWERS, KB_DATA; default the
project's answers/ and .kb/), computing any missing demonstration first (not measured), and
serves them over loopback with werkzeug's threaded server. Each page is opened in headless
Chromium (Debian's) with an empty cache, at 1280 x 900 and at 390 x 844 (a phone, scale 2),
and left alone until the network is idle: nothing is scrolled, so what loads is the first
screen plus what the browser fetches ahead of it (lazily loaded figures near the screen).
The responses are summed by type: the HTML, CSS, JS and figures, in bytes as transferred
(the browser asks for gzip, as browsers do) and, for the HTML, decoded. Prints a Markdown
table; nothing here is a test.
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
from collections import defaultdict

from playwright.sync_api import sync_playwright
from werkzeug.serving import make_server

from kb.config import Settings
from kb.web.app import create_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
SCREENS = {1280: {"viewport": {"width": 1280, "height": 900}},
           390: {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2,
                 "is_mobile": True}}
KINDS = {"document": "html", "stylesheet": "css", "script": "js", "image": "figures"}


def weigh(browser, url: str, screen: dict) -> dict[str, list[int]]:
    """Bytes transferred per kind of response (each a list, one entry per response) and the
    decoded size of the HTML, for one page opened with an empty cache and not scrolled."""
    context = browser.new_context(**screen)
    page = context.new_page()
    sizes: dict[str, list[int]] = defaultdict(list)
    finished = []
    page.on("requestfinished", lambda request: finished.append(request))
    page.goto(url, wait_until="networkidle")
    for request in finished:
        kind = KINDS.get(request.resource_type, "other")
        # Body bytes as they came over the wire (compressed when the server compressed).
        sizes[kind].append(request.sizes()["responseBodySize"])
        if kind == "html":
            sizes["html decoded"].append(len(request.response().body()))
    context.close()
    return sizes


def kib(values: list[int]) -> str:
    return f"{sum(values) / 1024:.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slug", action="append", help="only these answers (repeatable)")
    args = parser.parse_args()
    settings = Settings.from_env()
    app = create_app(settings)
    app.extensions["kb"].warm(samples=False, figures=True)
    slugs = args.slug or [answer.slug for answer in app.extensions["kb"].answers.current().all()]
    if not slugs:
        print(f"no answers in {settings.answers_dir}", file=sys.stderr)
        return 2
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    print(f"answers: {settings.answers_dir}  data: {settings.data_dir}  cores: {os.cpu_count()}")
    print()
    print("Transferred KiB of the first screen (HTML decoded in brackets; figures: how many "
          "loaded, KiB):")
    print()
    print("| page | HTML | CSS | JS | figures at 1280 | total at 1280 | figures at 390 "
          "| total at 390 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    totals = {1280: [], 390: []}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for path in ["/", *(f"/a/{slug}" for slug in slugs)]:
                row = {width: weigh(browser, base + path, screen)
                       for width, screen in SCREENS.items()}
                wide = row[1280]
                cells = [path, f"{kib(wide['html'])} ({kib(wide['html decoded'])})",
                         kib(wide["css"]), kib(wide["js"])]
                for width in SCREENS:
                    sizes = row[width]
                    total = sum(sum(values) for kind, values in sizes.items()
                                if kind != "html decoded")
                    if path != "/":
                        totals[width].append(total)
                    cells += [f"{len(sizes['figures'])}, {kib(sizes['figures'])}",
                              f"{total / 1024:.1f}"]
                print("| " + " | ".join(cells) + " |")
            browser.close()
    finally:
        server.shutdown()
    for width, values in totals.items():
        values.sort()
        print(f"\nanswers at {width} px: median {values[len(values) // 2] / 1024:.1f} KiB, "
              f"largest {values[-1] / 1024:.1f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
