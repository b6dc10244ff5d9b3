"""What the pages and their JSON twins show: the home page's threads, search results, and an
answer in one view (its figures, demonstrations with their parameter forms, claims)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from flask import url_for

from engine.catalog import get_experiment
from kb.answers.parse import SUMMARY_LIMIT
from kb.model import Answer
from kb.web.render import claim_html, error_box, figure_html, render_markdown, slugify
from kb.web.site import Outcome
from kb.web.urls import answer_ref, answer_url, figure_url, public_url, site, with_query


def threads() -> list[dict]:
    by_thread: dict[str, list[Answer]] = {}
    for answer in site().answers.current().all():
        by_thread.setdefault(answer.thread, []).append(answer)
    return [
        {
            "title": thread,
            "anchor": "thread-" + slugify(thread),
            "answers": [
                {**answer_ref(a), "summary": a.summary}
                for a in sorted(members, key=lambda a: a.title.lower())
            ],
        }
        for thread, members in sorted(by_thread.items(), key=lambda item: item[0].lower())
    ]


def search_json(query: str, limit: int) -> dict:
    found = site().search(query, limit)
    return found.to_json(lambda slug: public_url(answer_url(slug)))


@dataclass
class _ParamField:
    field: str  # the query key, "<demo>.<param>"
    name: str
    kind: str
    value: Any
    default: Any  # the answer's own value
    low: Any
    high: Any
    choices: tuple | None
    range: str
    doc: str


def demonstration_forms(outcome: Outcome) -> list[dict]:
    overrides = outcome.view.overrides_dict()
    forms = []
    for demo in outcome.answer.demonstrations:
        try:
            experiment = get_experiment(demo.experiment)
        except KeyError:
            continue  # already in the error box
        fields = [
            _ParamField(
                field=f"{demo.name}.{name}", name=name, kind=spec.kind.__name__,
                value=overrides.get(demo.name, {}).get(name, demo.params.get(name, spec.default)),
                default=demo.params.get(name, spec.default), low=spec.low, high=spec.high,
                choices=spec.choices, range=spec.describe_range(), doc=spec.doc)
            for name, spec in experiment.params.items()
        ]
        forms.append({"name": demo.name, "experiment": demo.experiment, "params": fields})
    return forms


def figure_links(outcome: Outcome) -> list[dict]:
    slug, view = outcome.answer.slug, outcome.view
    return [
        {
            "name": spec.name, "caption": spec.caption, "demonstration": demo.name,
            "svg": figure_url(slug, spec.name, "svg", view),
            "png": figure_url(slug, spec.name, "png", view),
        }
        for demo in outcome.answer.demonstrations
        for spec in demo.figures
    ]


def _body_blocks(outcome: Outcome, figures: list[dict]) -> dict[str, str]:
    blocks = {}
    for demo in outcome.answer.demonstrations:
        result = outcome.run.results.get(demo.name)
        if result is None or result.values is None:
            blocks[f"demo {demo.name}"] = error_box(
                [result.error if result else f"{demo.location}: demonstration did not run"],
                "This demonstration could not run")
            continue
        blocks[f"demo {demo.name}"] = "".join(
            figure_html(f["name"], f["caption"], f["svg"], f["png"])
            for f in figures if f["demonstration"] == demo.name)
    for claim in outcome.claims:
        blocks[f"claim {claim.claim.id}"] = claim_html(claim)
    return blocks


def short_description(text: str, limit: int = SUMMARY_LIMIT) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters (with an ellipsis)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:.") + "…"


def answer_page(outcome: Outcome, failure: str | None = None) -> dict:
    answer, view = outcome.answer, outcome.view
    figures = figure_links(outcome)
    errors = outcome.errors + ([failure] if failure else [])
    body = (error_box([failure], "This answer could not be rendered") if failure
            else render_markdown(answer.body, _body_blocks(outcome, figures), outcome.values))
    permalink = public_url(answer_url(answer.slug, view))
    main_figure = figures[0] if figures else None
    return {
        "title": answer.title,
        "question": answer.question,
        "summary": answer.summary,
        "description": short_description(answer.summary),
        "thread": answer.thread,
        "thread_url": url_for("pages.index") + "#thread-" + slugify(answer.thread),
        "url": url_for("pages.answer", slug=answer.slug),
        "plain_url": answer_url(answer.slug),
        "json_url": with_query(url_for("api.answer", slug=answer.slug), view),
        "permalink": permalink,
        "canonical_url": public_url(answer_url(answer.slug)),
        "image_url": public_url(main_figure["png"]) if main_figure else None,
        "image_alt": main_figure["caption"] if main_figure else "",
        "share_markdown": (
            f"{short_description(answer.summary)}\n\n"
            f"Full answer, with figures and checked claims: [{answer.title}]({permalink})"
        ),
        "errors": errors,
        "body_html": body,
        "seed": view.seed,
        "overridden": bool(view.overrides),
        "claims_total": len(outcome.claims),
        "claims_holding": sum(1 for c in outcome.claims if c.holds),
        "claims_unknown": sum(1 for c in outcome.claims if c.holds is None),
        "demonstrations": demonstration_forms(outcome),
        "related": related(answer),
    }


def related(answer: Answer) -> list[dict]:
    """The related answers that exist (a missing one is in the error box already)."""
    answers = site().answers.current()
    found = (answers.get(slug) for slug in answer.related)
    return [answer_ref(a) for a in found if a is not None]


def _plain(value: Any) -> Any:
    """A JSON-ready copy: numpy to Python; non-finite floats as strings ("nan", "inf")."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def answer_json(outcome: Outcome) -> dict:
    answer, view = outcome.answer, outcome.view
    forms = {form["name"]: form["params"] for form in demonstration_forms(outcome)}
    return {
        "slug": answer.slug,
        "title": answer.title,
        "question": answer.question,
        "thread": answer.thread,
        "summary": answer.summary,
        "tags": answer.tags,
        "url": public_url(answer_url(answer.slug, view)),
        "seed": view.seed,
        "figures": [{**f, "svg": public_url(f["svg"]), "png": public_url(f["png"])}
                    for f in figure_links(outcome)],
        "demonstrations": [
            {
                "name": demo.name,
                "experiment": demo.experiment,
                "seed": result.seed,
                "params": {
                    p.name: {"value": _plain(result.params.get(p.name, p.value)),
                             "default": _plain(p.default), "range": p.range, "query": p.field}
                    for p in forms.get(demo.name, [])
                },
                "error": result.error,
            }
            for demo in answer.demonstrations
            for result in [outcome.run.results[demo.name]]
        ],
        "claims": [
            {
                "id": c.claim.id,
                "text": c.claim.text,
                "check": c.claim.condition,
                "holds": c.holds,
                "value": _plain(c.value),
                "detail": c.detail,
                "seeds": list(c.seeds),
                "anchor": f"claim-{c.claim.id}",
            }
            for c in outcome.claims
        ],
        "related": related(answer),
        "errors": outcome.errors,
    }
