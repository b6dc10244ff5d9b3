"""An answer file read once: its text split into regions, each with its kind and its lines.

This is the one place that knows the answer format's Markdown: where the front matter ends,
which lines are a fenced or indented code block (and which fences are the answer's own
```` ```demo <name> ```` and ```` ```claim <id> ```` blocks), and, in the prose between them,
what is a code span, math, an inline value ``{{ expression : format }}`` or an escaped dollar.
The parser (``kb.answers.parse``), the renderer (``kb.web.render``) and the search index
(``kb.search.document``) all read answers through these regions, so they cannot disagree.

The block structure is CommonMark's, from markdown-it-py: fences of ``` or ~~~ with up to three
spaces before them, closed by a fence of the same character at least as long; fences inside
list items and block quotes; indented code blocks (where a ``` line is code, not a fence). A
fence never closed runs to the end of its container, as CommonMark says, and is a problem.
Prose is then scanned left to right, the first of these to start winning:

- a code span: a run of backticks to the next run of the same length (not across a blank line);
- ``\\$``: a literal dollar;
- ``$$...$$``: display math, over several lines if need be (not across a blank line);
- ``$...$``: inline math by Pandoc's rule: no space just inside the dollars, no digit right
  after, never a backtick, on one line ("from $20 to $30" stays text; Pandoc would let it
  run on to the next line, which here could be another list item, table row or quoted
  line). A ``$`` left over before a TeX command (``$\\gamma``) is a problem of its line;
- ``{{...}}``: an inline value, on one line. A ``{{`` left over is a problem of its line.

Regions tile the text they were split from: joined, their ``text`` gives it back.
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any

from markdown_it import MarkdownIt


class Kind(enum.Enum):
    FRONT_MATTER = "front matter"
    PROSE = "prose"
    DEMO = "demo"  # a ```demo <name> block
    CLAIM = "claim"  # a ```claim <id> block
    CODE_BLOCK = "code block"  # any other fenced code block, or an indented one
    CODE_SPAN = "code span"
    DISPLAY_MATH = "display math"
    INLINE_MATH = "inline math"
    VALUE = "value"
    ESCAPED_DOLLAR = "escaped dollar"


# Regions made of whole lines, outside any paragraph; the others lie within prose.
BLOCK_KINDS = frozenset({Kind.DEMO, Kind.CLAIM, Kind.CODE_BLOCK})
INLINE_KINDS = frozenset(
    {Kind.CODE_SPAN, Kind.DISPLAY_MATH, Kind.INLINE_MATH, Kind.VALUE, Kind.ESCAPED_DOLLAR})


@dataclass(frozen=True)
class Region:
    kind: Kind
    text: str  # the source, exactly as written (a block's lines with their line ends)
    start: int  # offset of ``text`` in the text that was split
    line: int  # file line of its first character
    end_line: int  # file line of its last character (a block's closing fence)
    # What is inside the markers: a block's lines (each ending in "\n", without the prefix of
    # its list item or quote), the TeX of math, the source of a value (unstripped), the code
    # of a code span, the YAML of the front matter; for prose its text.
    content: str = ""
    content_line: int = 0  # file line of the content's first line (blocks, front matter)
    name: str | None = None  # demo/claim: the one name after the kind, None when not one
    info: str = ""  # a fence's info string, stripped: "python", "demo drift"
    fence: str = ""  # a fence's opening marker (``` or ~~~~); "" for an indented code block
    closed: bool = True  # False: a fence (or front matter) never closed

    @property
    def end(self) -> int:
        return self.start + len(self.text)

    @property
    def prefix(self) -> str:
        """What precedes a fence on its opening line: indentation, list marker, quote mark."""
        first = self.text.partition("\n")[0]
        return first[: first.index(self.fence)] if self.fence else ""


@dataclass(frozen=True)
class Problem:
    line: int
    message: str
    kind: Kind  # what it is about: the front matter, a block, a value


@dataclass(frozen=True)
class Split:
    regions: tuple[Region, ...]
    problems: tuple[Problem, ...]


# Only the block structure comes from markdown-it: prose is scanned below (and rendered by
# Python-Markdown).
_BLOCK_PARSER = MarkdownIt("commonmark").disable("inline")

_INLINE = re.compile(
    r"""
      (?<!\\)(?P<ticks>`+)(?P<code>(?:(?!\n[ \t]*\n)[\s\S])+?)(?<!`)(?P=ticks)(?!`)
    | \\(?P<dollar>\$)
    | \$\$(?P<display>(?:(?!\n[ \t]*\n)[\s\S])+?)\$\$
    | (?<![\w$])\$(?P<inline>[^\s$`](?:[^$\n`]*?[^\s$\\`])?)\$(?!\d)
    | \{\{(?P<value>.*?)\}\}
    """,
    re.VERBOSE,
)
_INLINE_KIND = {"code": Kind.CODE_SPAN, "dollar": Kind.ESCAPED_DOLLAR,
                "display": Kind.DISPLAY_MATH, "inline": Kind.INLINE_MATH, "value": Kind.VALUE}
_UNCLOSED_VALUE = "'{{' is never closed with '}}' on this line"
_UNCLOSED_MATH = ("'$' opens inline math that is not closed with '$' on this line (inline "
                  "math stays on one line; write a long formula as display math, $$...$$)")
_OPENED_MATH = re.compile(r"(?<![\\\w$])\$\\[A-Za-z]")  # "$\gamma": TeX, not a price


def split_answer(text: str) -> Split:
    """A whole answer file: front matter (from a first line ``---`` to the next one), then the
    body. Any line break ends a line; the regions' text has "\\n" line ends and a final one."""
    lines = text.splitlines()
    text = "".join(line + "\n" for line in lines)
    if not lines or lines[0].rstrip() != "---":
        body = split_body(text)
        problem = Problem(1, "missing front matter: the file must start with a line '---'",
                          Kind.FRONT_MATTER)
        return Split(body.regions, (problem, *body.problems))
    end = next((i for i in range(1, len(lines)) if lines[i].rstrip() == "---"), None)
    if end is None:
        front = Region(Kind.FRONT_MATTER, text, 0, 1, len(lines), closed=False)
        problem = Problem(1, "front matter opened here is never closed with a line '---'",
                          Kind.FRONT_MATTER)
        return Split((front,), (problem,))
    size = sum(len(line) + 1 for line in lines[: end + 1])
    front = Region(Kind.FRONT_MATTER, text[:size], 0, 1, end + 1,
                   content="".join(line + "\n" for line in lines[1:end]), content_line=2)
    body = split_body(text[size:], end + 2, size)
    return Split((front, *body.regions), body.problems)


def split_body(text: str, first_line: int = 1, offset: int = 0) -> Split:
    """Markdown whose first line is file line ``first_line`` and first character at ``offset``:
    blocks by CommonMark, the prose around them scanned for code spans, math and values.
    "\r\n" and "\r" end lines as "\n" does (as markdown-it reads them), and the regions tile
    the text with "\n" in their place."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    starts = [0, *(match.end() for match in re.finditer("\n", text))]  # of each line
    if starts[-1] < len(text):
        starts.append(len(text))  # the end of a last line without its line end

    regions: list[Region] = []
    problems: list[Problem] = []
    prose_from = 0  # the line the prose since the last block starts on
    for token in _BLOCK_PARSER.parse(text):
        if token.type not in ("fence", "code_block") or token.map is None:
            continue
        first, stop = token.map
        inline = split_inline(text[starts[prose_from]:starts[first]], first_line + prose_from,
                              offset + starts[prose_from])
        regions += inline.regions
        problems += inline.problems
        block = _block(token, text[starts[first]:starts[stop]], first_line + first,
                       offset + starts[first])
        regions.append(block)
        problems += _block_problems(block)
        prose_from = stop
    inline = split_inline(text[starts[prose_from]:], first_line + prose_from,
                          offset + starts[prose_from])
    return Split((*regions, *inline.regions), (*problems, *inline.problems))


def _block(token: Any, source: str, line: int, start: int) -> Region:
    end_line = line + source.count("\n", 0, len(source) - 1)
    if token.type == "code_block":
        return Region(Kind.CODE_BLOCK, source, start, line, end_line, content=token.content,
                      content_line=line)
    # A closed fence's lines are the opening, its content and the closing one.
    content_lines = token.content.count("\n") + (token.content[-1:] not in ("", "\n"))
    closed = token.map[1] - token.map[0] - 2 == content_lines
    info = token.info.strip()
    words = info.split()
    kind = Kind(words[0]) if words and words[0] in ("demo", "claim") else Kind.CODE_BLOCK
    name = words[1] if kind is not Kind.CODE_BLOCK and len(words) == 2 else None
    return Region(kind, source, start, line, end_line, content=token.content,
                  content_line=line + 1, name=name, info=info, fence=token.markup, closed=closed)


def _block_problems(block: Region) -> list[Problem]:
    if not block.closed:
        return [Problem(block.line, f"code block opened here with {block.fence} is never closed",
                        block.kind)]
    if block.kind in (Kind.DEMO, Kind.CLAIM) and block.name is None:
        kind = block.kind.value
        return [Problem(block.line, f"a {kind} block needs one name: {block.fence}{kind} <name>",
                        block.kind)]
    return []


def split_inline(text: str, first_line: int = 1, offset: int = 0) -> Split:
    """Prose (no block structure): its code spans, escaped dollars, math and inline values,
    with the prose between them; a ``{{`` outside all of them, or a ``$`` before a TeX
    command, is a problem of its line."""
    regions: list[Region] = []
    left_over: list[str] = []  # the prose, with each other region cut out but its line ends
    line = first_line  # of the next region

    def add(kind: Kind, start: int, end: int, content: str | None = None) -> None:
        nonlocal line
        source = text[start:end]
        end_line = line + source.count("\n", 0, len(source) - 1)
        regions.append(Region(kind, source, offset + start, line, end_line,
                              content=source if content is None else content))
        left_over.append(source if kind is Kind.PROSE else "\n" * source.count("\n"))
        line += source.count("\n")

    position = 0
    for match in _INLINE.finditer(text):
        if match.start() > position:
            add(Kind.PROSE, position, match.start())
        group = next(name for name in _INLINE_KIND if match[name] is not None)
        add(_INLINE_KIND[group], match.start(), match.end(), match[group])
        position = match.end()
    if position < len(text):
        add(Kind.PROSE, position, len(text))
    problems = []
    for index, prose in enumerate("".join(left_over).split("\n")):
        if "{{" in prose:
            problems.append(Problem(first_line + index, _UNCLOSED_VALUE, Kind.VALUE))
        if _OPENED_MATH.search(prose):
            problems.append(Problem(first_line + index, _UNCLOSED_MATH, Kind.INLINE_MATH))
    return Split(tuple(regions), tuple(problems))


def body_regions(answer: Any) -> tuple[Region, ...]:
    """The regions of an answer's body: those its parser kept, or for an ``Answer`` made
    without them (tests, tools), its body split now."""
    if answer.regions:
        return tuple(r for r in answer.regions if r.kind is not Kind.FRONT_MATTER)
    return split_body(answer.body, answer.body_line).regions
