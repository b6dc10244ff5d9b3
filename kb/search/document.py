"""What the search index holds of one answer: its fields as plain text, read from its regions.

Demonstration blocks go (their YAML is configuration, not prose); a claim block becomes its
sentence, taken from the parsed claims; ``{{...}}`` values, unknown until run, become "…";
display formulas are elided, inline ones become Unicode as in every plain-text field
(``kb.answers.plaintext``: "$\\sigma_B^2$" -> "σB²"); code keeps its text without braces.
A link keeps its text, in quotes when it is a title (another answer's question): pasted bare
into the sentence around it, it would read as part of that sentence. Headings and table rows
are fields of their own: the body is the prose snippets are cut from.
"""
from __future__ import annotations

import re

from kb.answers.plaintext import tex_to_text
from kb.answers.regions import BLOCK_KINDS, Kind, Region, body_regions, split_inline
from kb.model import Answer

_HEADING = re.compile(r"[ \t]{0,3}#{1,6}[ \t]+")  # the marks that start a heading line
_TABLE_ROW = re.compile(r"[ \t]*\|")
_TABLE_RULE = re.compile(r"^[\s|:-]*$")
_LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)]*)\)")
_BRACES = str.maketrans("", "", "{}")
# A link to another answer whose text is a title rather than words of the sentence: a
# question, or a capitalized phrase ("[If γ and β keep changing, how can …?](/a/…)").
_TITLE_TEXT = re.compile(r"[A-Z].*|.*[?!]", re.DOTALL)
_ANSWER_LINK = "/a/"


def _region_text(region: Region, claim_texts: dict[str, str]) -> str:
    """What a reader sees of a region, as plain text (Markdown marks still in the prose)."""
    kind = region.kind
    if kind is Kind.PROSE:
        return region.text
    if kind is Kind.VALUE:
        return "…"
    if kind is Kind.DISPLAY_MATH:
        return " … "
    if kind is Kind.INLINE_MATH:
        return tex_to_text(region.content)
    if kind is Kind.ESCAPED_DOLLAR:
        return region.content
    if kind in (Kind.CODE_SPAN, Kind.CODE_BLOCK):
        return region.content.translate(_BRACES)
    if kind is Kind.CLAIM:
        return claim_texts.get(region.name or "", "")
    return ""  # a demonstration block, the front matter


def _link_text(match: re.Match) -> str:
    image, text, target = match[1], match[2].strip(), match[3].strip()
    title = not image and target.startswith(_ANSWER_LINK) and _TITLE_TEXT.fullmatch(text)
    return f"“{text}”" if title else text


def _plain(text: str) -> str:
    """Prose as the words a reader sees: link targets, emphasis and code marks removed, each
    run of white space one space (str methods: a third of the time regular expressions take,
    and a tenth of an index build is this)."""
    if "](" in text:
        text = _LINK.sub(_link_text, text)
    return " ".join(text.replace("*", "").replace("`", "").split())


def _table_text(rows: list[str]) -> str:
    """The cells of Markdown table rows, without the rules."""
    cells = (cell for row in rows if not _TABLE_RULE.match(row) for cell in row.split("|"))
    return " ; ".join(_plain(cell) for cell in cells if cell.strip())


def _body_parts(answer: Answer) -> tuple[list[str], list[str], list[str]]:
    """The body's text (blocks as their own lines), its headings and its table rows.

    A line is a heading or a table row by its source; its text is that of its regions.
    """
    claim_texts = {claim.id: claim.text for claim in answer.claims}
    body: list[str] = []
    headings: list[str] = []
    rows: list[str] = []
    source: list[str] = []  # the current line, as written and as plain text
    plain: list[str] = []

    def end_line() -> None:
        written, text = "".join(source), "".join(plain)
        source.clear()
        plain.clear()
        heading = _HEADING.match(written)
        if heading:
            headings.append(text[heading.end():].rstrip(" \t#"))
        elif _TABLE_ROW.match(written):
            rows.append(text)
        else:
            body.append(text)

    for region in body_regions(answer):
        if region.kind in BLOCK_KINDS:
            body.append(_region_text(region, claim_texts))
            continue
        lines = region.text.split("\n")
        text = _region_text(region, claim_texts)
        texts = text.split("\n") if region.kind is Kind.PROSE else [text] + [""] * (len(lines) - 1)
        for written, shown in zip(lines[:-1], texts):
            source.append(written)
            plain.append(shown)
            end_line()
        source.append(lines[-1])
        plain.append(texts[-1])
    if source:
        end_line()
    return body, headings, rows


def document_fields(answer: Answer) -> dict[str, str]:
    """What the index holds of one answer, field by field."""
    body, headings, rows = _body_parts(answer)
    summary = "".join(_region_text(r, {}) for r in split_inline(answer.summary).regions)
    return {
        "slug": answer.slug,
        "title": answer.title,
        "question": answer.question,
        "tags": " ; ".join(answer.tags),
        "aliases": " ; ".join(answer.aliases),
        "headings": " ; ".join(_plain(heading) for heading in headings),
        "summary": _plain(summary),
        "body": _plain("\n".join(body)),
        "tables": _table_text(rows),
    }
