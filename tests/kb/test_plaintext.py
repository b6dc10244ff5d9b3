"""TeX in plain-text fields: inline math as Unicode, by the rule of ``kb.answers.plaintext``
(Unicode sub/superscripts when every character has one, else the index on the line)."""
from __future__ import annotations

import pytest

from kb.answers.plaintext import plain_text, tex_to_text


@pytest.mark.parametrize("tex, text", [
    (r"\gamma = 1, \beta = 0", "γ = 1, β = 0"),
    (r"|\gamma|", "|γ|"),
    (r"\sigma_{\mathcal B}", "σB"),  # no subscript B in Unicode: on the line, no underscore
    (r"\mu_{\mathcal B,j}", "μB,j"),  # one character without a subscript: all on the line
    (r"x_1 + x_{ij}", "x₁ + xᵢⱼ"),
    (r"\sigma^2", "σ²"),
    (r"10^{-3}", "10⁻³"),
    (r"W^\top h", "Wᵀh"),
    (r"\epsilon", "ε"),
    (r"y - z", "y − z"),  # a real minus sign
    (r"\frac{\sigma^2}{m}", "σ²/m"),
    (r"\frac{z - \mu}{\sqrt{\sigma^2 + \epsilon}}", "(z − μ)/√(σ² + ε)"),
    (r"\mathrm{RMS}(y - z)/\mathrm{std}(z)", "RMS(y − z)/std(z)"),
    (r"\partial L / \partial \gamma_j", "∂L / ∂γⱼ"),
    (r"\hat z", "z\u0302"),
    (r"\log(|\gamma|/\sigma_{\mathcal B})", "log(|γ|/σB)"),
    (r"\unknowncommand x", "unknowncommand x"),  # never dropped
])
def test_tex_to_text(tex, text):
    assert tex_to_text(tex) == text


def test_plain_text_converts_only_the_math():
    assert plain_text(r"Every unit: $|\gamma|$ against $\sigma_{\mathcal B}$ (log scales)") == (
        "Every unit: |γ| against σB (log scales)")
    # Prose dollars stay prose (Pandoc's rule, as in answers), \$ is a dollar, code is code.
    assert plain_text(r"from $20 to $30, \$5, `a_b`") == "from $20 to $30, $5, a_b"
    assert plain_text("no math: γ and σB already") == "no math: γ and σB already"


def test_plain_text_leaves_no_tex_in_the_answers_text_fields():
    from kb.answers.parse import load_answers
    from kb.config import PROJECT_ROOT

    answers = load_answers(PROJECT_ROOT / "answers")
    texts = [a.summary for a in answers]
    texts += [c.text for a in answers for c in a.claims]
    texts += [f.caption for a in answers for d in a.demonstrations for f in d.figures]
    for text in texts:
        plain = plain_text(text)
        assert "\\" not in plain and "$" not in plain, plain
