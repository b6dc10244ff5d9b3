"""An answer's Markdown body -> HTML: math as MathML, inline values, figures and claim boxes.

The body is read as the parser reads it, in the regions of ``kb.answers.regions``. Math,
inline values, the answer's own blocks (```` ```demo ```` and ```` ```claim ````) and fenced
code are replaced *before* Markdown sees the text, through Markdown's HTML stash: TeX is full of
``_`` and ``*`` that Markdown would otherwise turn into emphasis, and the stash lets Markdown
place block HTML outside paragraphs. Markdown renders the prose (code spans and indented code
blocks included) and never looks for fences itself. Everything here is a pure function of its
arguments (no Flask), so pages and tests render the same way.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping
from xml.etree.ElementTree import Element

import markdown
from latex2mathml.converter import convert as latex_to_mathml
from markdown.extensions import Extension
from markdown.extensions.toc import TocExtension
from markdown.extensions.toc import slugify as _markdown_slugify
from markdown.preprocessors import Preprocessor
from markdown.treeprocessors import Treeprocessor
from markupsafe import Markup

from kb.answers.numbers import number
from kb.answers.plaintext import plain_text
from kb.answers.regions import Kind, Region, split_body, split_inline
from kb.answers.stats import Effect
from kb.model import ClaimOutcome
from kb.run.claims import INLINE_ERROR_MARKER, describe_effect

# latex2mathml keeps commands it does not know as text (``<mi>\foo</mi>``): that is a failure.
_UNKNOWN_COMMAND = re.compile(r"<m[ion]>\\[A-Za-z]")


# Greek letters by name, so anchors keep their words (γ -> gamma): transliteration libraries
# (unidecode) write γ as "g", which reads as a typo in a link. Capitals map through lower().
_GREEK = dict(zip("αβγδεζηθικλμνξοπρστυφχψωςϵϑϕ", (
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho "
    "sigma tau upsilon phi chi psi omega sigma epsilon theta phi").split()))
_SYMBOLS = {"√": "sqrt", "∞": "infinity", "∑": "sum", "∂": "partial", "∇": "nabla"}


def slugify(text: str, separator: str = "-") -> str:
    """The anchor of a heading or topic: Markdown's rule for heading ids, after Greek letters
    and a few symbols become their names and ``_`` a separator (``σ_B`` -> ``sigma-b``)."""
    words = []
    for char in text:
        name = _GREEK.get(char.lower()) or _SYMBOLS.get(char)
        words.append(f" {name} " if name else " " if char == "_" else char)
    return _markdown_slugify("".join(words), separator)


def _slugify_keeping_old(old_ids: dict[str, str]):
    """``slugify`` for Markdown's table of contents that also notes, for each new id, the id
    the same heading had before Greek letters were spelled out (``old_ids``), so that links
    made then still arrive (see ``_OldAnchors``)."""
    def make(text: str, separator: str) -> str:
        new = slugify(text, separator)
        old = _markdown_slugify(text, separator)
        if old != new:
            old_ids[new] = old
        return new
    return make


def math_html(tex: str, display: bool = False) -> Markup:
    """TeX -> MathML; TeX that does not convert cleanly is shown as code, never dropped."""
    try:
        mathml = latex_to_mathml(tex, display="block" if display else "inline")
    except Exception:  # latex2mathml raises a zoo of its own exception types
        mathml = None
    if mathml is None or _UNKNOWN_COMMAND.search(mathml):
        delimiter = "$$" if display else "$"
        return Markup('<code class="math-error" title="this TeX could not be converted">'
                      "{}</code>").format(delimiter + tex + delimiter)
    if display:
        # A long formula scrolls sideways in its own box, with shadows at the edge that has
        # more (style.css); focusable, so that keyboard users can scroll it too.
        # A span (shown as a block) is allowed where a paragraph holds the formula.
        return Markup('<span class="math-display" tabindex="0">{}</span>').format(Markup(mathml))
    return Markup(mathml)


# Punctuation that sticks to inline math: browsers may break a line between a formula and the
# comma or bracket next to it ("(γ = 1" at the end of a line, ", β = 0)" on the next).
_OPENING = re.compile(r"""[({“‘"']+$""")
_CLOSING = re.compile(r"""^[)}.,;:!?”’"']+""")


def inline_html(text: str) -> Markup:
    """A caption or a claim's text: plain prose with the inline math of prose (``$\\gamma$``)
    as MathML and code spans as code, read as the answers' prose is read."""
    parts = []
    for region in split_inline(text).regions:
        if region.kind is Kind.INLINE_MATH:
            parts.append(math_html(region.content))
        elif region.kind is Kind.DISPLAY_MATH:
            parts.append(math_html(region.content.strip(), display=True))
        elif region.kind is Kind.CODE_SPAN:
            parts.append(Markup("<code>{}</code>").format(region.content))
        elif region.kind is Kind.ESCAPED_DOLLAR:
            parts.append(region.content)
        else:
            parts.append(region.text)
    return Markup("").join(parts)


def value_html(source: str, text: str | None, was: str | None = None) -> Markup:
    """An inline value: the formatted number, its expression as a tooltip; a warning marker
    when it could not be computed (the reason is in the page's error box). A value a rerun
    changed (``was``: the answer's own) is marked, and says what it was in words too."""
    if text is None:
        return Markup('<span class="value value-missing" title="{}: not available">{}</span>'
                      ).format(source, INLINE_ERROR_MARKER)
    if was is not None:
        return Markup('<mark class="value value-changed" title="{}">{}'
                      '<span class="was"> (was {})</span></mark>').format(source, text, was)
    return Markup('<span class="value" title="{}">{}</span>').format(source, text)


def changed_html(html: str, was: str) -> Markup:
    """A block (a claim box) that a rerun changed, with what it was."""
    return Markup('<div class="changed-block"><p class="changed-note">Changed by this rerun; '
                  'with the answer\'s own settings: {}</p>{}</div>').format(was, Markup(html))


FIRST_CHANGE = "first-change"  # the anchor a rerun lands on: its first changed result


def code_html(code: str, language: str = "") -> Markup:
    """A fenced code block, as Python-Markdown's fenced_code extension writes one."""
    escaped = (code.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
               .replace('"', "&quot;"))
    return Markup('<pre><code{}>{}</code></pre>').format(
        Markup(' class="language-{}"').format(language) if language else "", Markup(escaped))


def error_box(messages: list[str], title: str = "This answer has problems") -> Markup:
    """A visible box listing problems, each message naming its file:line."""
    items = Markup("").join(Markup("<li><code>{}</code></li>").format(m) for m in messages)
    return Markup('<div class="error-box" role="alert"><strong>{}</strong><ul>{}</ul></div>'
                  ).format(title, items)


def computing_box(demonstration: str) -> Markup:
    """Where a demonstration's figures go while it is being computed."""
    return Markup('<div class="computing-box" role="status">Demonstration <code>{}</code> is '
                  'being computed; its figures appear here when it is done.</div>'
                  ).format(demonstration)


# The phone's rendering below this width (the page's column is 46rem): see kb.run.figures.
PHONE_MEDIA = "(max-width: 40rem)"


def figure_html(name: str, caption: str, svg_url: str, png_url: str,
                phone_url: str | None = None) -> Markup:
    """A figure with its stable anchor: the SVG shown (on a narrow screen its phone
    rendering, chosen by the browser through <picture>), the PNG one click away; the caption
    with its math as MathML, the image's alt text in plain Unicode."""
    source = Markup('<source media="{}" srcset="{}">').format(PHONE_MEDIA, phone_url) \
        if phone_url else Markup("")
    return Markup(
        '<figure class="figure" id="figure-{name}">'
        '<a href="{svg}"><picture>{source}<img src="{svg}" alt="{alt}" loading="lazy">'
        '</picture></a>'
        '<figcaption>{caption} <a class="figure-link" href="#figure-{name}">#</a> '
        '<a class="png-link" href="{png}">PNG</a></figcaption></figure>'
    ).format(name=name, caption=inline_html(caption), alt=plain_text(caption), svg=svg_url,
             png=png_url, source=source)


def claim_html(outcome: ClaimOutcome) -> Markup:
    """A claim box: ✓ or ✗ (or ? when it could not be evaluated), its kind, its sentence, and
    what was measured in a reader's words (values and bounds, "1.8×10⁻⁵ (needs below
    10⁻³)") with the seeds. How it is checked, the condition and the detail naming the
    quantities (``undo.gap = ...``), is one click away in a <details>. A finding leads with
    its effect over the seeds and a strip of the per-seed values; a claim that could not be
    evaluated says why instead."""
    state, mark = {True: ("holds", "✓"), False: ("fails", "✗"), None: ("unknown", "?")}[
        outcome.holds
    ]
    kind = outcome.claim.kind
    effect = outcome.effect
    measured = Markup("")
    if effect is not None:
        measured = Markup('<p class="claim-effect">Over the seeds: {text}</p>{strip}').format(
            text=describe_effect(effect), strip=seed_strip(effect))
    seeds = Markup('{seed_word} <span class="claim-seeds">{seeds}</span>').format(
        seed_word="seed" if len(outcome.seeds) == 1 else "seeds", seeds=seed_list(outcome.seeds))
    if outcome.holds is None or not outcome.reading:
        measure = Markup('<p class="claim-measure"><span class="claim-detail">{}</span> · {}'
                         '</p>').format(outcome.detail, seeds)
    else:
        worst = (Markup(" at seed {}").format(outcome.seed)
                 if outcome.seed is not None and len(outcome.seeds) > 1 else "")
        quantity = (Markup('<p>Per seed: <code>{}</code></p>').format(effect.quantity)
                    if effect is not None else "")
        measure = Markup(
            '<p class="claim-measure">Measured: <span class="claim-reading">{reading}</span>'
            '{worst} · {seeds}</p><details class="claim-how"><summary>How it is checked'
            '</summary><p><code class="claim-condition">{check}</code></p>'
            '<p class="claim-detail">{detail}</p>{quantity}</details>'
        ).format(reading=outcome.reading, worst=worst, seeds=seeds,
                 check=outcome.claim.condition, detail=outcome.detail, quantity=quantity)
    return Markup(
        '<div class="claim claim-{kind} claim-{state}" id="claim-{id}">'
        '<span class="claim-mark" aria-label="{state}">{mark}</span>'
        '<div class="claim-body"><p class="claim-text"><span class="claim-kind">{label}</span> '
        '{text} <a class="claim-link" href="#claim-{id}">#</a></p>{measured}{measure}'
        '</div></div>\n'
    ).format(kind=kind, state=state, id=outcome.claim.id, mark=mark,
             label="Finding" if kind == "finding" else "Check",
             text=inline_html(outcome.claim.text), measured=measured, measure=measure)


def seed_list(seeds: tuple[int, ...]) -> str:
    """Seeds as people read them: runs of consecutive seeds as ranges ("0–19, 40")."""
    if not seeds:
        return "—"
    runs: list[list[int]] = []
    for seed in seeds:
        if runs and seed == runs[-1][-1] + 1:
            runs[-1].append(seed)
        else:
            runs.append([seed])
    return ", ".join(f"{r[0]}–{r[-1]}" if len(r) > 2 else ", ".join(map(str, r)) for r in runs)


def seed_strip(effect: Effect, width: int = 260, height: int = 30) -> Markup:
    """The per-seed values as dots on a line, with the mean and its 95% interval as a bar, and
    zero marked when it is near: a small inline SVG (no script, no inline style)."""
    low, high = effect.ci
    points = [*effect.values, low, high]
    lo, hi = min(points), max(points)
    span = (hi - lo) or abs(hi) or 1.0
    if lo - span / 2 <= 0 <= hi + span / 2:  # zero in view: the effect's sign reads at once
        lo, hi = min(lo, 0.0), max(hi, 0.0)
        span = hi - lo
    pad = 8

    def x(value: float) -> str:
        return f"{pad + (value - lo) / span * (width - 2 * pad):.1f}"

    mid = height / 2
    parts = [f'<line class="strip-axis" x1="{pad}" x2="{width - pad}" y1="{mid}" y2="{mid}"/>']
    if lo <= 0 <= hi:
        parts.append(f'<line class="strip-zero" x1="{x(0)}" x2="{x(0)}" y1="3" '
                     f'y2="{height - 3}"/>')
    parts.append(f'<line class="strip-ci" x1="{x(low)}" x2="{x(high)}" y1="{mid}" y2="{mid}"/>')
    parts.append(f'<line class="strip-mean" x1="{x(effect.mean)}" x2="{x(effect.mean)}" '
                 f'y1="{mid - 7}" y2="{mid + 7}"/>')
    for i, value in enumerate(effect.values):
        jitter = (i % 5 - 2) * 2.2  # a fixed spread, so equal values stay visible
        parts.append(f'<circle class="strip-dot" cx="{x(value)}" cy="{mid + jitter:.1f}" r="3"/>')
    label = (f"{len(effect.values)} per-seed values from {number(min(effect.values), 3)} to "
             f"{number(max(effect.values), 3)}; mean {number(effect.mean, 3)}, 95% CI "
             f"{number(low, 3)} to {number(high, 3)}")
    return Markup('<svg class="seed-strip" role="img" aria-label="{label}" width="{w}" '
                  'height="{h}" viewBox="0 0 {w} {h}">{parts}</svg>').format(
        label=label, w=width, h=height, parts=Markup("".join(parts)))


class _Substitute(Preprocessor):
    """Replaces math, values and the answer's blocks with stashed HTML before parsing."""

    def __init__(self, md: markdown.Markdown, blocks: Mapping[str, str],
                 values: Mapping[str, str | None], changed: Mapping[str, str]):
        super().__init__(md)
        self.blocks = blocks
        self.values = values
        self.changed = changed
        self.first_change = bool(changed)  # the anchor is still to be placed

    def _anchor(self, html: str) -> Markup:
        """``html`` after the first-change anchor, if it is the first change."""
        if not self.first_change:
            return Markup(html)
        self.first_change = False
        return Markup('<span id="{}"></span>').format(FIRST_CHANGE) + Markup(html)

    def run(self, lines: list[str]) -> list[str]:
        # The text as Markdown normalised it (tabs expanded): the stash's placeholders made
        # before that would be removed with the other control characters.
        regions = split_body("\n".join(lines)).regions
        parts = [self._replace(region) for region in regions]
        for i, region in enumerate(regions):
            if region.kind is Kind.INLINE_MATH:
                self._keep_with_punctuation(regions, parts, i)
        return "".join(parts).split("\n")

    def _keep_with_punctuation(self, regions: list[Region], parts: list[str], i: int) -> None:
        """Moves the brackets and punctuation touching inline math ``i`` into one unbreakable
        span with it (taken from the neighbouring prose, which holds no Markdown there)."""
        before = after = ""
        if i > 0 and regions[i - 1].kind is Kind.PROSE:
            found = _OPENING.search(parts[i - 1])
            if found:
                before, parts[i - 1] = found.group(), parts[i - 1][:found.start()]
        if i + 1 < len(regions) and regions[i + 1].kind is Kind.PROSE:
            found = _CLOSING.match(parts[i + 1])
            if found:
                after, parts[i + 1] = found.group(), parts[i + 1][found.end():]
        if before or after:
            parts[i] = self.md.htmlStash.store(Markup('<span class="nowrap">{}{}{}</span>').format(
                before, math_html(regions[i].content), after))

    def _replace(self, region: Region) -> str:
        stash = self.md.htmlStash.store
        kind = region.kind
        if kind in (Kind.PROSE, Kind.CODE_SPAN) or (kind is Kind.CODE_BLOCK and not region.fence):
            return region.text  # Markdown renders prose, code spans and indented code
        if kind is Kind.ESCAPED_DOLLAR:
            return region.content
        if kind is Kind.DISPLAY_MATH:
            return stash(math_html(region.content.strip(), display=True))
        if kind is Kind.INLINE_MATH:
            return stash(math_html(region.content))
        if kind is Kind.VALUE:
            source = region.content.strip()
            html = value_html(source, self.values.get(source), self.changed.get(source))
            return stash(self._anchor(html) if source in self.changed else html)
        if kind is Kind.CODE_BLOCK:
            html = code_html(region.content, region.info.split()[0] if region.info else "")
        else:
            key = f"{kind.value} {region.name}" if region.name else kind.value
            html = self.blocks.get(key) if region.closed else None
            if html is None:
                html = error_box([f"{key}: nothing to show"])
            elif key in self.changed:
                html = self._anchor(changed_html(html, self.changed[key]))
        # On lines of its own, so Markdown keeps it out of any paragraph, in its list item or
        # quote (their marks are the prefix of the fence).
        return "\n\n" + region.prefix + stash(html) + "\n\n"


class _OldAnchors(Treeprocessor):
    """Each heading whose id changed when Greek letters came to be spelled out also answers
    to its old id (an empty element carrying it), so that links made before still arrive."""

    def __init__(self, md: markdown.Markdown, old_ids: dict[str, str]):
        super().__init__(md)
        self.old_ids = old_ids

    def run(self, root) -> None:
        taken = {el.get("id") for el in root.iter() if el.get("id")}
        for heading in root.iter():
            old = self.old_ids.get(heading.get("id", ""))
            if heading.tag in ("h2", "h3", "h4", "h5", "h6") and old and old not in taken:
                marker = Element("span", {"id": old, "class": "old-anchor"})
                heading.insert(0, marker)
                marker.tail, heading.text = heading.text, None
                taken.add(old)


class _ScrollableTables(Treeprocessor):
    """Tables scroll sideways on a narrow screen (style.css): focusable, so that keyboard
    users can scroll them too."""

    def run(self, root) -> None:
        for table in root.iter("table"):
            table.set("tabindex", "0")


class _AnswerExtension(Extension):
    def __init__(self, blocks: Mapping[str, str], values: Mapping[str, str | None],
                 changed: Mapping[str, str], old_ids: dict[str, str]):
        super().__init__()
        self.blocks = blocks
        self.values = values
        self.changed = changed
        self.old_ids = old_ids

    def extendMarkdown(self, md: markdown.Markdown) -> None:
        # After whitespace normalisation (30), before raw HTML (20).
        md.preprocessors.register(_Substitute(md, self.blocks, self.values, self.changed),
                                  "kb_substitute", 28)
        md.treeprocessors.register(_ScrollableTables(md), "kb_scrollable_tables", 0)
        # After the table of contents (5) gave headings their ids.
        md.treeprocessors.register(_OldAnchors(md, self.old_ids), "kb_old_anchors", 4)


@dataclass(frozen=True)
class RenderedBody:
    """An answer body as HTML, and its table of contents: its headings (level 2, with their
    level 3 ones as ``children``) as ``{"id", "html", "children"}``."""

    html: Markup
    toc: list[dict]


def render_markdown(body: str, blocks: Mapping[str, str] | None = None,
                    values: Mapping[str, str | None] | None = None,
                    changed: Mapping[str, str] | None = None) -> Markup:
    """Render an answer body (see ``render_body``) to HTML."""
    return render_body(body, blocks, values, changed).html


def render_body(body: str, blocks: Mapping[str, str] | None = None,
                values: Mapping[str, str | None] | None = None,
                changed: Mapping[str, str] | None = None) -> RenderedBody:
    """Render an answer body, with its table of contents.

    ``blocks`` maps ``"demo <name>"`` / ``"claim <id>"`` to the HTML that replaces that fenced
    block (see :func:`figure_html`, :func:`claim_html`); ``values`` maps each inline value's
    source (the text between ``{{`` and ``}}``, stripped) to its formatted text, or None when
    it could not be computed. ``changed`` maps the values and blocks (by the same keys) that
    a rerun changed to what they were; they are marked, the first after a ``FIRST_CHANGE``
    anchor. Headings get ids from their text (``slugify``) and keep their ids of before
    Greek letters were spelled out.
    """
    old_ids: dict[str, str] = {}
    md = markdown.Markdown(  # one instance per call: Markdown objects are not thread-safe
        extensions=[
            _AnswerExtension(blocks or {}, values or {}, changed or {}, old_ids),
            "tables",
            "sane_lists",
            TocExtension(
                permalink="#", permalink_class="anchor", permalink_title="Link to this section",
                slugify=_slugify_keeping_old(old_ids),
            ),
        ],
        output_format="html",
    )
    html = Markup(md.convert(body))
    return RenderedBody(html, [_toc_entry(token) for token in _sections(md.toc_tokens)])


def _sections(tokens: list[dict]) -> list[dict]:
    """The level 2 headings (an h1 in a body is lifted to its children)."""
    return [t for token in tokens
            for t in (_sections(token["children"]) if token["level"] < 2 else [token])]


def _toc_entry(token: dict) -> dict:
    return {"id": token["id"], "html": Markup(token["html"]),
            "children": [{"id": c["id"], "html": Markup(c["html"]), "children": []}
                         for c in token["children"] if c["level"] == 3]}
