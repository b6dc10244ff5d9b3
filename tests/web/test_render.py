"""Rendering an answer body: math to MathML, bad TeX to code, values, claim boxes, anchors."""
from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from kb.run.claims import INLINE_ERROR_MARKER
from kb.model import Claim, ClaimOutcome, Location
from kb.web.render import (
    claim_html, error_box, figure_html, math_html, render_body, render_markdown, slugify,
)


class _Elements(HTMLParser):
    """Every start tag as (tag, attributes, text up to the next tag)."""

    def __init__(self, html: str):
        super().__init__()
        self.elements: list[tuple[str, dict]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def ids(self) -> list[str]:
        return [attrs["id"] for _, attrs in self.elements if "id" in attrs]

    def tags(self, name: str) -> list[dict]:
        return [attrs for tag, attrs in self.elements if tag == name]


def outcome(holds, value=2.5, seeds=(0, 1)) -> ClaimOutcome:
    claim = Claim("bn-helps", "Batch norm <helps>.", "d.x > 2", None, Location("answers/a.md", 9))
    return ClaimOutcome(claim, holds, value, "d.x = 2.5 (needs > 2)", seeds[-1], tuple(seeds),
                        reading="2.5 (needs above 2)")


def test_inline_math_becomes_mathml_and_keeps_tex_structure():
    html = render_markdown(r"The scale is $\frac{1}{\sqrt{\sigma^2 + \epsilon}}$ here.")
    assert '<math xmlns="http://www.w3.org/1998/Math/MathML" display="inline">' in html
    assert "<mfrac>" in html and "<msqrt>" in html
    assert "$" not in html


def test_display_math_is_a_block_and_markdown_does_not_touch_underscores():
    html = render_markdown("Before.\n\n$$\n\\hat{x}_i = x_i - \\mu_B * 2 * y_j\n$$\n\nAfter.")
    assert 'display="block"' in html
    assert "<em>" not in html  # the _i ... _j and * * would be emphasis in plain Markdown
    assert "<msub>" in html


@pytest.mark.parametrize("tex", [r"x^", r"\left( x", r"\unknowncommand{x}"])
def test_tex_that_fails_to_convert_is_shown_as_code(tex):
    html = str(math_html(tex))
    assert html.startswith('<code class="math-error"')
    assert f"${tex}$".replace("<", "&lt;") in html
    assert "<math" not in html


def test_bad_tex_inside_a_page_does_not_break_the_rest():
    html = render_markdown(r"Bad $x^$ then good $y_1$.")
    assert '<code class="math-error"' in html and "<msub>" in html


def test_dollars_that_are_not_math_stay_text():
    html = render_markdown("From $20,000 to $30,000, or \\$7$, and `$code$` is code.")
    assert "<math" not in html
    assert "From $20,000 to $30,000, or $7$" in html and "<code>$code$</code>" in html


def test_math_inside_code_blocks_is_left_alone():
    html = render_markdown("```python\nx = '$a_b$ {{ d.v }}'\n```\n")
    assert "<math" not in html and "{{ d.v }}" in html


def test_inline_values_are_substituted_and_escaped():
    html = render_markdown("Ratio {{ d.ratio:.2f }} and {{d.gone}}.",
                           values={"d.ratio:.2f": "3.20", "d.gone": None})
    elements = _Elements(html)
    spans = elements.tags("span")
    assert [s["class"] for s in spans] == ["value", "value value-missing"]
    assert ">3.20</span>" in html and f">{INLINE_ERROR_MARKER}</span>" in html
    assert "{{" not in html


def test_blocks_replace_their_fences_outside_paragraphs():
    body = "Text.\n\n```demo d\nexperiment: x\n```\n\n```claim c\ntext: t\n```\n"
    html = render_markdown(body, blocks={"demo d": "<div>FIGURE</div>",
                                         "claim c": "<div>CLAIM</div>"})
    assert "<div>FIGURE</div>" in html and "<div>CLAIM</div>" in html
    assert "<p><div>" not in html
    assert "experiment: x" not in html


def test_indented_fences_are_blocks_too_as_the_parser_reads_them():
    html = render_markdown("Text.\n\n   ```claim c\n   text: t\n   ````\n\nAfter $x$.",
                           blocks={"claim c": "<div>CLAIM</div>"})
    assert "<div>CLAIM</div>" in html and "text: t" not in html and "<math" in html


def test_a_block_without_html_shows_an_error_not_its_yaml():
    html = render_markdown("```claim lost\ntext: t\n```\n")
    assert 'class="error-box"' in html and "claim lost" in html and "text: t" not in html


def test_headings_get_stable_anchors_from_their_text():
    body = ("## Why does batch norm work?\n\ntext\n\n## Why does batch norm work?\n\n"
            "### γ and β, again\n")
    first = _Elements(render_markdown(body)).ids()
    # Greek letters keep their names; the id the heading had before still leads to it.
    assert first == ["why-does-batch-norm-work", "why-does-batch-norm-work_1",
                     "gamma-and-beta-again", "and-again"]
    assert _Elements(render_markdown(body)).ids() == first
    assert slugify("Why does batch norm work?") == "why-does-batch-norm-work"


@pytest.mark.parametrize("heading, anchor", [
    ("Measured: γ does not follow σ_B", "measured-gamma-does-not-follow-sigma-b"),
    ("What the 1/σ really does", "what-the-1-sigma-really-does"),
    ("Does 1/√(σ²+ε) prevent exploding gradients?",
     "does-1-sqrt-sigma-2-epsilon-prevent-exploding-gradients"),
    ("Σ, Γ and ς", "sigma-gamma-and-sigma"),
])
def test_heading_anchors_keep_their_greek_letters_as_words(heading, anchor):
    assert slugify(heading) == anchor
    elements = _Elements(render_markdown(f"## {heading}\n"))
    assert elements.ids()[0] == anchor
    assert elements.tags("a")[0]["href"] == f"#{anchor}"  # the permalink


def test_heading_with_math_keeps_its_math_and_an_anchor_with_its_words():
    html = render_markdown("## Scaling by $\\gamma$\n")
    assert _Elements(html).ids() == ["scaling-by-gamma", "scaling-by"]
    assert "<math" in html


def test_the_table_of_contents_lists_the_headings_by_level():
    body = render_body("# Lifted\n\n## One\n\n### One a\n\n#### Deep\n\n## Two $\\beta$\n")
    assert [(e["id"], [c["id"] for c in e["children"]]) for e in body.toc] == [
        ("one", ["one-a"]), ("two-beta", [])]
    assert "<math" in body.toc[1]["html"] and "#" not in body.toc[0]["html"]


def test_inline_math_keeps_its_brackets_and_punctuation_on_its_line():
    html = render_markdown("Set ($\\gamma = 1$, $\\beta = 0$) here; [$x$](http://a.b) and $y$.")
    spans = re.findall(r'<span class="nowrap">(.*?)</span>', html)
    assert len(spans) == 3
    assert spans[0].startswith("(<math") and spans[0].endswith("</math>,")
    assert spans[1].startswith("<math") and spans[1].endswith("</math>)")
    assert spans[2].endswith("</math>.")
    assert '<a href="http://a.b"><math' in html  # Markdown around math is left alone


def test_display_math_scrolls_in_a_focusable_box():
    html = render_markdown("Before.\n\n$$\na = b\n$$\n\nAfter.")
    box = _Elements(html).tags("span")[0]
    assert box == {"class": "math-display", "tabindex": "0"}
    assert '<span class="math-display" tabindex="0"><math' in html


@pytest.mark.parametrize("holds, mark, state", [(True, "✓", "holds"), (False, "✗", "fails"),
                                                 (None, "?", "unknown")])
def test_claim_box_shows_mark_measurement_and_seeds(holds, mark, state):
    html = str(claim_html(outcome(holds)))
    box = _Elements(html).tags("div")[0]
    assert box["id"] == "claim-bn-helps" and f"claim-{state}" in box["class"]
    assert f">{mark}</span>" in html
    assert 'seeds <span class="claim-seeds">0, 1</span>' in html
    if holds is None:  # why it could not be evaluated, in place of a measurement
        assert '<span class="claim-detail">d.x = 2.5 (needs &gt; 2)</span>' in html
        assert "<details" not in html
    else:  # the value in a reader's words; the expression and its detail on demand
        measure = html[html.index('class="claim-measure"'):html.index("<details")]
        assert "Measured: <span class=\"claim-reading\">2.5 (needs above 2)</span> at seed 1" in measure
        assert "d.x" not in measure
        how = html[html.index('<details class="claim-how">'):html.index("</details>")]
        assert '<code class="claim-condition">d.x &gt; 2</code>' in how
        assert '<p class="claim-detail">d.x = 2.5 (needs &gt; 2)</p>' in how
    assert "Batch norm &lt;helps&gt;." in html  # text is escaped


def test_claim_box_with_one_seed_says_seed():
    assert 'seed <span class="claim-seeds">4</span>' in claim_html(outcome(True, seeds=(4,)))


def test_figure_has_anchor_svg_and_png_link():
    html = str(figure_html("perturb-depth", 'Layer "10"', "/a/x/figures/p.svg?seed=1&a=b",
                           "/a/x/figures/p.png?seed=1&a=b"))
    elements = _Elements(html)
    assert elements.tags("figure")[0]["id"] == "figure-perturb-depth"
    assert elements.tags("img")[0]["src"] == "/a/x/figures/p.svg?seed=1&a=b"
    assert elements.tags("img")[0]["alt"] == 'Layer "10"'
    assert "/a/x/figures/p.png?seed=1&a=b" in [a.get("href") for a in elements.tags("a")]


def test_error_box_lists_each_location():
    html = str(error_box(["answers/a.md:3: bad <thing>", "answers/a.md:9: worse"]))
    assert html.count("<li>") == 2 and "answers/a.md:3: bad &lt;thing&gt;" in html
    assert 'role="alert"' in html
