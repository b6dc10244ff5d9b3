"""One notation everywhere: captions and claim texts take the prose's inline math (MathML on
the page), and every plain-text field (JSON, meta tags, alt text, share snippet) has it as
Unicode."""
from __future__ import annotations

import html
import re
import textwrap
from pathlib import Path
from urllib.parse import urlsplit

import pytest

MATH = r"""
---
slug: math
title: Does γ follow σ?
question: Does it?
thread: Notation
tags: [notation]
summary: >-
  Nothing pulls $\gamma$ to $\sigma_{\mathcal B}$: we measured it at $10^{-3}$.
---

Prose with $\gamma$ and $\sigma_{\mathcal B}$.

```demo d
experiment: test_web_noise
params: {n: 50}
seed: 0
figures:
  - name: spread
    drawing: samples
    caption: Samples with $|\gamma| = 1$ and $\beta = 0$, against $\sigma_{\mathcal B}$.
```

```claim spread-positive
kind: check
text: The spread $\sigma$ is positive, not `d.spread`.
check: d.spread > 0
```
"""


@pytest.fixture
def answers_dir(answers_dir: Path) -> Path:
    """The web tests' answers and one more, with math in every text field."""
    folder = answers_dir
    (folder / "math.md").write_text(textwrap.dedent(MATH).lstrip(), encoding="utf-8")
    return folder


def meta(page: str, key: str) -> str:
    match = re.search(rf'<meta (?:property|name)="{re.escape(key)}" content="([^"]*)"', page)
    assert match, key
    return html.unescape(match[1])


def test_captions_and_claim_texts_render_their_math_as_the_prose_does(client):
    page = client.get("/a/math").get_data(as_text=True)
    caption = page[page.index("<figcaption>"):page.index("</figcaption>")]
    assert caption.count("<math") == 3 and "$" not in caption and "gamma" not in caption
    claim = page[page.index('id="claim-spread-positive"'):]
    claim = claim[:claim.index('class="claim-measure"')]
    assert claim.count("<math") == 1 and "<code>d.spread</code>" in claim and "$" not in claim
    # The image's alt text is the caption in plain Unicode.
    alt = html.unescape(re.search(r'<img src="[^"]*spread[^"]*" alt="([^"]*)"', page)[1])
    assert alt == "Samples with |γ| = 1 and β = 0, against σB."


def test_plain_text_fields_carry_the_math_as_unicode(client):
    page = client.get("/a/math").get_data(as_text=True)
    summary = "Nothing pulls γ to σB: we measured it at 10⁻³."
    assert meta(page, "og:description") == summary
    assert meta(page, "description") == summary
    assert meta(page, "og:image:alt") == "Samples with |γ| = 1 and β = 0, against σB."
    share = html.unescape(page[page.index('id="share-markdown">'):].split(">", 1)[1])
    assert share.startswith(summary)
    data = client.get("/api/answers/math").get_json()
    assert data["summary"] == summary
    assert data["figures"][0]["caption"] == "Samples with |γ| = 1 and β = 0, against σB."
    assert data["claims"][0]["text"] == "The spread σ is positive, not d.spread."
    home = client.get("/api/answers").get_json()
    summaries = [a["summary"] for t in home["topics"] for a in t["answers"] if a["slug"] == "math"]
    assert summaries == [summary]


def test_link_preview_image_is_a_large_png_with_its_size_and_alt(client):
    page = client.get("/a/math").get_data(as_text=True)
    image = meta(page, "og:image")
    assert image.endswith("/a/math/figures/spread.png")
    assert (meta(page, "og:image:width"), meta(page, "og:image:height")) == ("1200", "630")
    assert meta(page, "og:image:type") == "image/png"
    assert meta(page, "twitter:card") == "summary_large_image"
    png = client.get(urlsplit(image).path).data
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert (int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")) == (1200, 630)


def test_narrow_screens_get_the_phone_rendering_through_picture(client):
    page = client.get("/a/math?seed=2").get_data(as_text=True)
    picture = page[page.index("<picture>"):page.index("</picture>")]
    source = html.unescape(re.search(r'<source media="([^"]*)" srcset="([^"]*)">', picture)[2])
    assert source == "/a/math/figures/spread.phone.svg?seed=2"
    phone, wide = client.get(source), client.get(source.replace(".phone.svg", ".svg"))
    assert phone.status_code == wide.status_code == 200
    assert phone.mimetype == "image/svg+xml" and phone.data != wide.data
    assert b'width="280.8pt"' in phone.data  # 3.9 in: shown at about its own size on a phone
    data = client.get("/api/answers/math").get_json()
    assert data["figures"][0]["svg_phone"].endswith("/a/math/figures/spread.phone.svg")


def test_the_real_answers_captions_and_claim_texts_convert_cleanly():
    from kb.answers.parse import load_answers
    from kb.config import PROJECT_ROOT
    from kb.web.render import inline_html

    texts = [text for a in load_answers(PROJECT_ROOT / "answers")
             for text in [*(c.text for c in a.claims),
                          *(f.caption for d in a.demonstrations for f in d.figures)]]
    rendered = [str(inline_html(text)) for text in texts]
    assert not [html for html in rendered if "math-error" in html or "$" in html]
    assert sum("<math" in html for html in rendered) >= 30  # the notation is used


def test_no_real_answer_page_shows_tex_as_text():
    """Every piece of math on the real answers' pages is rendered: outside MathML and code, no
    TeX command or dollar-delimited math is left in the text a reader sees (an inline formula
    broken over two lines of its paragraph once was)."""
    from kb.config import PROJECT_ROOT
    from kb.web.app import create_app

    client = create_app(TESTING=True).test_client()
    for path in sorted((PROJECT_ROOT / "answers").glob("*.md")):
        page = client.get(f"/a/{path.stem}").get_data(as_text=True)
        seen = re.sub(r"<(math|code|pre|script)\b.*?</\1>", " ", page, flags=re.S)
        seen = html.unescape(re.sub(r"<[^>]+>", " ", seen))
        assert not re.findall(r".{0,30}(?:\\[A-Za-z]{2,}|\$\S).{0,30}", seen), path.stem
