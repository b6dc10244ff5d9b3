"""One reading of an answer file: the regions, and the parser, renderer and index agreeing on
them in the Markdown corner cases (CommonMark fences, indented code, list items, code spans,
math and dollars)."""
from __future__ import annotations

import re

import pytest

from engine.registry import Param, experiment
from kb.answers.parse import load_answer
from kb.answers.regions import Kind, split_answer, split_body, split_inline
from kb.search.document import document_fields
from kb.web.render import render_markdown


@experiment("test_regions", params={"n": Param(int, 4, 1, 64, "samples")})
def regions_experiment(rng, n):
    """Stands for a demonstration; never run here."""
    return {"ratio": n / 2, "n": n}


CORNERS = """\
---
slug: corners
title: Corners
question: Are the corners read alike?
thread: Tests
summary: Corners of the format, with $\\sigma$ in the summary.
---
Values {{ d.ratio:.2f }} and {{d.n}}; literal: `{{ not a value }}`, $x^{{2}}$, \\$5, from $20 to $30.

   ~~~demo d
   experiment: test_regions
   params: {n: 8}
   ~~~~~
```claim right-after
kind: check
text: Right after the demonstration.
check: d.ratio > 0
````

    ```demo shown-as-code
    four spaces make this code, not a fence
    ```

- A list item holding a claim:

  ```claim in-a-list
  kind: check
  text: Inside a list item.
  check: d.n == 8
  ```

- And ordinary code:

  ```python
  print("{{ d.ratio }} $x$ <b>")
  ```

$$
\\frac{a}{b} + {{ d.n }}
$$

## Closing with {{ d.n:d }}

```text
never closed: {{ d.ratio }}
"""


@pytest.fixture
def corners(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "answers").mkdir()
    path = tmp_path / "answers" / "corners.md"
    path.write_text(CORNERS, encoding="utf-8")
    return load_answer(path)


def line_of(needle: str) -> int:
    (line,) = [n for n, text in enumerate(CORNERS.splitlines(), 1) if needle in text]
    return line


def kinds(markdown: str) -> list[tuple[str, str]]:
    return [(r.kind.value, r.text) for r in split_body(markdown).regions]


def test_regions_tile_the_file_and_find_every_part():
    split = split_answer(CORNERS)
    assert "".join(r.text for r in split.regions) == CORNERS
    blocks = [(r.kind, r.name, r.line, r.end_line) for r in split.regions
              if r.kind in (Kind.DEMO, Kind.CLAIM, Kind.CODE_BLOCK)]
    assert blocks == [
        (Kind.DEMO, "d", line_of("~~~demo d"), line_of("~~~~~")),
        (Kind.CLAIM, "right-after", line_of("```claim right-after"), line_of("````")),
        (Kind.CODE_BLOCK, None, line_of("```demo shown-as-code"), line_of("four spaces") + 1),
        (Kind.CLAIM, "in-a-list", line_of("```claim in-a-list"), line_of("check: d.n == 8") + 1),
        (Kind.CODE_BLOCK, None, line_of("```python"), line_of("print(") + 1),
        (Kind.CODE_BLOCK, None, line_of("```text"), line_of("never closed")),
    ]
    values = [(r.content, r.line) for r in split.regions if r.kind is Kind.VALUE]
    assert values == [(" d.ratio:.2f ", line_of("Values")), ("d.n", line_of("Values")),
                      (" d.n:d ", line_of("## Closing"))]
    math = [(r.kind, r.line, r.end_line) for r in split.regions
            if r.kind in (Kind.INLINE_MATH, Kind.DISPLAY_MATH)]
    assert math == [(Kind.INLINE_MATH, line_of("Values"), line_of("Values")),
                    (Kind.DISPLAY_MATH, line_of("\\frac") - 1, line_of("\\frac") + 1)]
    assert [r.text for r in split.regions if r.kind is Kind.CODE_SPAN] == ["`{{ not a value }}`"]
    assert [r.content for r in split.regions if r.kind is Kind.ESCAPED_DOLLAR] == ["$"]
    assert [(p.line, p.message) for p in split.problems] == [
        (line_of("```text"), "code block opened here with ``` is never closed")]


def test_the_parser_reads_exactly_the_regions(corners):
    regions = corners.regions
    assert [d.name for d in corners.demonstrations] == ["d"]
    assert corners.demonstrations[0].params == {"n": 8}
    assert [(c.id, c.location.line) for c in corners.claims] == [
        (r.name, r.line) for r in regions if r.kind is Kind.CLAIM]
    assert [(v.source, v.location.line) for v in corners.inline_values] == [
        (r.content, r.line) for r in regions if r.kind is Kind.VALUE]
    assert [str(e) for e in corners.errors] == [
        f"answers/corners.md:{line_of('```text')}: code block opened here with ``` is never closed"]


def test_the_index_holds_the_prose_and_claims_but_no_block_yaml_or_values(corners):
    fields = document_fields(corners)
    text = " ".join(fields.values())
    for yaml_key in ("experiment:", "params:", "check:", "text:"):
        assert yaml_key not in text
    assert "{{" not in text and "}}" not in text
    assert "Right after the demonstration." in fields["body"]
    assert "Inside a list item." in fields["body"]
    assert fields["body"].startswith("Values … and …; literal: not a value , x², $5, from $20 to $30.")
    assert fields["headings"] == "Closing with …"
    assert fields["summary"] == "Corners of the format, with σ in the summary."


def test_the_page_shows_blocks_values_and_code_where_the_regions_are(corners):
    blocks = {f"{r.kind.value} {r.name}": f'<div class="block">{r.kind.value} {r.name}</div>'
              for r in corners.regions if r.kind in (Kind.DEMO, Kind.CLAIM)}
    values = {v.source.strip(): f"value{i}" for i, v in enumerate(corners.inline_values)}
    html = str(render_markdown(corners.body, blocks, values))
    for block in blocks.values():
        assert html.count(block) == 1
    assert "<p><div" not in html
    for yaml_key in ("experiment:", "params:", "check:", "text:"):
        assert yaml_key not in html
    assert html.count('<span class="value"') == len(values) == 3
    for marker in values.values():
        assert html.count(f">{marker}</span>") == 1
    # Every {{ left is code, shown as written.
    outside_code = re.sub(r"<code[^>]*>.*?</code>", "", html, flags=re.S)
    assert "{{" not in outside_code and "$" not in outside_code.replace("$5", "").replace(
        "$20 to $30", "")
    assert "<code>{{ not a value }}</code>" in html
    assert ('<pre><code class="language-python">print(&quot;{{ d.ratio }} $x$ &lt;b&gt;&quot;)\n'
            "</code></pre>") in html
    assert "<pre><code>```demo shown-as-code\nfour spaces make this code" in html
    assert '<pre><code class="language-text">never closed: {{ d.ratio }}\n' in html  # to the end
    assert html.count('display="block"') == 1 and html.count('display="inline"') == 1


@pytest.mark.parametrize("markdown, expected", [
    # ~~~ closes only ~~~, and a closing fence may be longer but not shorter
    ("~~~\na\n```\n~~~~\nb\n", [("code block", "~~~\na\n```\n~~~~\n"), ("prose", "b\n")]),
    ("````\na\n```\nb\n````\n", [("code block", "````\na\n```\nb\n````\n")]),
    # up to three spaces before a fence; four make indented code
    ("   ```\na\n   ```\n", [("code block", "   ```\na\n   ```\n")]),
    ("    ```\n    a\n", [("code block", "    ```\n    a\n")]),
    # inside a paragraph, four spaces are a continuation line, not code
    ("Text\n    {{ v }}\n", [("prose", "Text\n    "), ("value", "{{ v }}"), ("prose", "\n")]),
    # a fence in a block quote
    ("> ```claim q\n> text: t\n> ```\n", [("claim", "> ```claim q\n> text: t\n> ```\n")]),
])
def test_block_structure_follows_commonmark(markdown, expected):
    assert kinds(markdown) == expected


@pytest.mark.parametrize("prose, expected", [
    ("a `x` b", [("prose", "a "), ("code span", "`x`"), ("prose", " b")]),
    ("`` `{{ v }}` ``", [("code span", "`` `{{ v }}` ``")]),
    ("`a\n\nb`", [("prose", "`a\n\nb`")]),  # a code span does not cross a blank line
    ("\\$x$", [("escaped dollar", "\\$"), ("prose", "x$")]),
    ("$a$ and $ b$", [("inline math", "$a$"), ("prose", " and $ b$")]),
    ("$5 and $6", [("prose", "$5 and $6")]),
    ("$$a\nb$$", [("display math", "$$a\nb$$")]),
    ("$$a\n\nb$$", [("prose", "$$a\n\nb$$")]),
    # inline math stays on its line: the next one may be another list item or table row
    ("is $a +\nb$.", [("prose", "is $a +\nb$.")]),
    ("- costs $x\n- costs y$ each", [("prose", "- costs $x\n- costs y$ each")]),
    ("{{ a }}{{b}}", [("value", "{{ a }}"), ("value", "{{b}}")]),
    ("{{ a\n}}", [("prose", "{{ a\n}}")]),
])
def test_prose_is_scanned_once_left_to_right(prose, expected):
    assert [(r.kind.value, r.text) for r in split_inline(prose).regions] == expected


def test_tex_left_open_at_the_end_of_its_line_is_a_problem_of_that_line():
    split = split_inline("fine $\\gamma$ and $5\ncomputes $\\gamma z\n+ \\beta$ here\n"
                         "`$\\gamma` in code, \\$\\gamma escaped, US$\\alpha\n", first_line=3)
    assert [(p.line, p.kind) for p in split.problems] == [(4, Kind.INLINE_MATH)]
    assert "not closed with '$' on this line" in split.problems[0].message


def test_a_left_over_opening_braces_is_a_problem_of_its_line():
    split = split_inline("fine {{ a }}\n`{{ code }}` then {{ broken\n", first_line=7)
    assert [(p.line, p.message) for p in split.problems] == [
        (8, "'{{' is never closed with '}}' on this line")]


def test_a_block_needs_exactly_one_name():
    split = split_body("```demo\nx: 1\n```\n\n```claim a b\nx: 1\n```\n", first_line=3)
    assert [(r.kind, r.name) for r in split.regions if r.kind is not Kind.PROSE] == [
        (Kind.DEMO, None), (Kind.CLAIM, None)]
    assert [(p.line, p.message) for p in split.problems] == [
        (3, "a demo block needs one name: ```demo <name>"),
        (7, "a claim block needs one name: ```claim <name>")]
