"""What each view shows, built once: its page renders it and its JSON twin is part of it.

As in Datasette, a view's ``Context`` is the JSON twin's body (``data``) plus what only the
page needs (``extra``: links, tallies, form fields, all derived from the same values), so the
page and its JSON cannot drift apart. One per view: the home page (``/``, ``/api/answers``),
search (``/search``, ``/api/search``) and an answer (``/a/<slug>``, ``/api/answers/<slug>``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
from flask import url_for

from engine.catalog import get_experiment
from engine.registry import ParameterError
from kb.answers.numbers import powers_of_ten
from kb.answers.parse import OTHER_TOPIC, SUMMARY_LIMIT, TOPICS
from kb.answers.plaintext import plain_text
from kb.answers.stats import Effect
from kb.model import Answer
from kb.run.figures import CARD_SIZE
from kb.web.render import (
    FIRST_CHANGE, RenderedBody, claim_html, computing_box, error_box, figure_html, render_body,
)
from kb.web.site import Outcome, View
from kb.web.urls import (
    answer_ref, answer_url, figure_url, public_url, site, topic_anchor, with_query,
)


@dataclass(frozen=True)
class Context:
    """One view: ``data`` is the JSON twin's body (in its order), ``extra`` what only the page
    needs; no key is in both."""

    data: dict
    extra: dict

    def page(self) -> dict:
        """The page template's variables."""
        return {**self.data, **self.extra}


SITE_DESCRIPTION = (
    "Questions learners ask about batch normalization, each answered with measurements: every "
    "number, figure and claim is recomputed by a small numpy batch-norm engine and checked."
)


def index_context() -> Context:
    """Every answer under its topic: topics in the order of ``TOPICS`` (a learner's order),
    answers by title. Forum threads are not sections: each answer names its own."""
    by_topic: dict[str, list[Answer]] = {}
    for answer in site().answers.current().all():
        by_topic.setdefault(answer.topic or OTHER_TOPIC, []).append(answer)
    order = {topic: i for i, topic in enumerate(TOPICS)}
    topics = [
        {
            "topic": topic,
            "anchor": topic_anchor(topic),
            "answers": [
                {**answer_ref(a), "summary": plain_text(a.summary), "thread": a.thread}
                for a in sorted(members, key=lambda a: a.title.lower())
            ],
        }
        for topic, members in sorted(by_topic.items(),
                                     key=lambda item: (order.get(item[0], len(TOPICS)), item[0]))
    ]
    return Context({"topics": topics}, {
        "json_url": url_for("api.answers"),
        "description": SITE_DESCRIPTION,
        "site_url": public_url(url_for("pages.index")),
    })


def search_context(query: str, limit: int) -> Context:
    found = site().search(query, limit)
    return Context(found.to_json(lambda slug: public_url(answer_url(slug))),
                   {"json_url": url_for("api.search", q=query, limit=limit)})


def answer_context(outcome: Outcome, refused: ParameterError | None = None,
                   asked: Mapping[str, str] | None = None) -> Context:
    """An answer shown with one view. The rendered body is not part of it (see
    ``answer_body``): the JSON does not need it, and the page shows it even if it fails.

    ``refused``: settings that could not be used (the view is then the answer's own); the
    form shows what was ``asked`` (the query) and the reason next to the field at fault."""
    answer, view, shown_for = outcome.answer, outcome.view, outcome.shown_for
    url = public_url(answer_url(answer.slug, shown_for))
    # Text fields as plain Unicode (their TeX as γ, σB): JSON, meta tags and alt text.
    figures = [{**f, "caption": plain_text(f["caption"]), "svg": public_url(f["svg"]),
                "svg_phone": public_url(f["svg_phone"]), "png": public_url(f["png"])}
               for f in _figure_links(outcome)]
    asked = asked if refused is not None else None
    forms = _demonstration_forms(outcome, asked or {})
    field_errors = {refused.param: str(refused)} if refused is not None and refused.param else {}
    claims = _claims(outcome)
    data = {
        "slug": answer.slug,
        "title": answer.title,
        "question": answer.question,
        "thread": answer.thread,
        "source": answer.source,
        "topic": answer.topic or OTHER_TOPIC,
        "summary": plain_text(answer.summary),
        "tags": answer.tags,
        "url": url,
        "seed": view.seed,
        "figures": figures,
        "demonstrations": _demonstrations(outcome, forms),
        "claims": claims,
        "related": _related(answer),
        "errors": outcome.errors,
        "computing": outcome.computing,  # demonstrations without a result yet
        # A view at other settings: how its rerun stands (while it is not done, or when it
        # failed, the results above are the answer's own).
        "rerun": outcome.rerun.to_json() if outcome.rerun else None,
    }
    description = _short_description(data["summary"])
    main_figure = figures[0] if figures else None
    share = (f"{description}\n\n"
             f"Full answer, with figures and checked claims: [{answer.title}]({url})")
    extra = {
        "description": description,
        "topic_url": url_for("pages.index") + "#" + topic_anchor(answer.topic or OTHER_TOPIC),
        "plain_url": answer_url(answer.slug),
        "json_url": with_query(url_for("api.answer", slug=answer.slug), shown_for),
        "canonical_url": public_url(answer_url(answer.slug)),
        "image_url": main_figure["png"] if main_figure else None,
        "image_size": CARD_SIZE,
        "image_alt": main_figure["caption"] if main_figure else "",
        "share_markdown": share,
        "share_rows": _phone_rows(share),
        "link_rows": _phone_rows(url),  # the link too: an input would show its start only
        "overridden": bool(view.overrides),
        "asked_own": shown_for == View(),  # the rerun form's, whatever results are shown
        "rerun_status": _rerun_status(outcome),
        "first_change": FIRST_CHANGE,
        "changes": len(changes(outcome)),
        "claims_total": len(claims),
        "claims_holding": sum(1 for c in claims if c["holds"]),
        "claims_unknown": sum(1 for c in claims if c["holds"] is None),
        "forms": forms,
        # The settings asked for that could not be used: why, and for which field.
        "refused": str(refused) if refused is not None else None,
        "field_errors": field_errors,
        "seed_text": (asked or {}).get("seed", shown_for.seed if shown_for.seed is not None
                                       else ""),
    }
    return Context(data, extra)


def _phone_rows(text: str) -> int:
    """Rows enough for the whole of ``text`` on a phone (about 40 characters a line), where a
    box cannot size itself to its content (field-sizing in style.css)."""
    return sum(len(line) // 40 + 1 for line in text.split("\n"))


def answer_body(outcome: Outcome) -> RenderedBody:
    """The answer's Markdown as HTML, with its figures, claim boxes and values in place, and
    its table of contents."""
    figures = _figure_links(outcome)  # by path, as the page links them
    blocks = {}
    for demo in outcome.answer.demonstrations:
        result = outcome.run.results.get(demo.name)
        if demo.name in outcome.computing:
            blocks[f"demo {demo.name}"] = computing_box(demo.name)
            continue
        if result is None or result.values is None:
            blocks[f"demo {demo.name}"] = error_box(
                [result.error if result else f"{demo.location}: demonstration did not run"],
                "This demonstration could not run")
            continue
        blocks[f"demo {demo.name}"] = "".join(
            figure_html(f["name"], f["caption"], f["svg"], f["png"], f["svg_phone"])
            for f in figures if f["demonstration"] == demo.name)
    for claim in outcome.claims:
        blocks[f"claim {claim.claim.id}"] = claim_html(claim)
    return render_body(outcome.answer.body, blocks, outcome.values, changes(outcome))


def changes(outcome: Outcome) -> dict[str, str]:
    """What a rerun's results changed, compared with the answer's own: inline values by
    source and claim boxes (``claim <id>``), each with what it was."""
    own = outcome.own
    if own is None:
        return {}
    own_values = own.values
    found = {source: own_values[source] for source, text in outcome.values.items()
             if text is not None and own_values.get(source) not in (None, text)}
    own_claims = {c.claim.id: c for c in own.claims}
    for claim in outcome.claims:
        before = own_claims.get(claim.claim.id)
        if before is not None and (before.holds, before.detail) != (claim.holds, claim.detail):
            verdict = {True: "holds", False: "does not hold", None: "not checked"}[before.holds]
            found[f"claim {claim.claim.id}"] = f"{verdict} ({before.detail})"
    return found


def _rerun_status(outcome: Outcome) -> str | None:
    """The rerun's state in a sentence (the page's script keeps it current); None when the
    rerun is done or there is none."""
    rerun = outcome.rerun
    if rerun is None or rerun.state == "done":
        return None
    if rerun.state == "queued":
        return (f"Rerun with {rerun.settings}: waiting to be computed, number "
                f"{rerun.position} in the queue …")
    if rerun.state == "running":
        return f"Computing with {rerun.settings}: {round(rerun.elapsed or 0)} s …"
    return rerun.notice


def _short_description(text: str, limit: int = SUMMARY_LIMIT) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters (with an ellipsis)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:.") + "…"


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


def _demonstration_forms(outcome: Outcome, asked: Mapping[str, str]) -> list[dict]:
    """The rerun form's fields: the view's values, or what was ``asked`` as it was typed."""
    overrides = outcome.shown_for.overrides_dict()
    forms = []
    for demo in outcome.answer.demonstrations:
        try:
            experiment = get_experiment(demo.experiment)
        except KeyError:
            continue  # already in the error box
        fields = [
            _ParamField(
                field=f"{demo.name}.{name}", name=name, kind=spec.kind.__name__,
                value=asked.get(f"{demo.name}.{name}") or overrides.get(demo.name, {}).get(
                    name, demo.params.get(name, spec.default)),
                default=demo.params.get(name, spec.default), low=spec.low, high=spec.high,
                choices=spec.choices, range=powers_of_ten(spec.describe_range()),  # [10⁻⁹, 0.001]
                doc=spec.doc)
            for name, spec in experiment.params.items()
        ]
        forms.append({"name": demo.name, "experiment": demo.experiment, "params": fields})
    return forms


def _figure_links(outcome: Outcome) -> list[dict]:
    slug, view = outcome.answer.slug, outcome.view
    return [
        {
            "name": spec.name, "caption": spec.caption, "demonstration": demo.name,
            "svg": figure_url(slug, spec.name, "svg", view),
            "svg_phone": figure_url(slug, spec.name, "phone.svg", view),
            "png": figure_url(slug, spec.name, "png", view),
        }
        for demo in outcome.answer.demonstrations
        for spec in demo.figures
    ]


def _related(answer: Answer) -> list[dict]:
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


def _demonstrations(outcome: Outcome, forms: list[dict]) -> list[dict]:
    """Each demonstration as run for the view: its seed, parameters and error, if any."""
    fields = {form["name"]: form["params"] for form in forms}
    return [
        {
            "name": demo.name,
            "experiment": demo.experiment,
            "seed": result.seed,
            "params": {
                p.name: {"value": _plain(result.params.get(p.name, p.value)),
                         "default": _plain(p.default), "range": p.range, "query": p.field}
                for p in fields.get(demo.name, [])
            },
            "error": None if demo.name in outcome.computing else result.error,
        }
        for demo in outcome.answer.demonstrations
        for result in [outcome.run.results[demo.name]]
    ]


def _claims(outcome: Outcome) -> list[dict]:
    """Each claim, its kind, whether it holds and the value it was checked on; a finding's
    effect with its 95% interval over the answer's sample of seeds."""
    return [
        {
            "id": c.claim.id,
            "kind": c.claim.kind,
            "text": plain_text(c.claim.text),
            "check": c.claim.condition,
            "holds": c.holds,
            "value": _plain(c.value),
            "measured": c.reading,  # the detail in a reader's words, without the names
            "detail": c.detail,
            "seeds": list(c.seeds),
            "anchor": f"claim-{c.claim.id}",
            # A finding's measured effect over the answer's sample (None while measuring).
            **({"effect": _effect(c.effect)} if c.claim.kind == "finding" else {}),
        }
        for c in outcome.claims
    ]


def _effect(effect: Effect | None) -> dict | None:
    if effect is None:
        return None
    return _plain({"mean": effect.mean, "ci": list(effect.ci), "seeds": len(effect.seeds),
                   "values": list(effect.values), "quantity": effect.quantity})
