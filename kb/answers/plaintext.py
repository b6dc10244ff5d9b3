"""Text with inline TeX math as plain Unicode, for the fields that cannot carry MathML: the
summary, og:description, the share snippet, image alt text, the JSON's text fields, search
snippets.

``$\\sigma_{\\mathcal B}$`` reads "σB", ``$\\gamma = 1$`` "γ = 1", ``$10^{-3}$`` "10⁻³".
The rule for sub- and superscripts: written with Unicode's sub/superscript characters when
every character of it has one (x₁, σ², zᵢⱼ, 10⁻³, Wᵀ); otherwise set on the line as written,
without the ``_`` or ``^`` (σB, μB,j), since a half-lowered index ("σ_ʙ" or "μB,ⱼ") reads
worse than none. Hand-written because no maintained library converts TeX to plain text; it
covers the TeX the answers write, and an unknown command keeps its name ("\\foo" -> "foo").
"""
from __future__ import annotations

import re
from functools import lru_cache

from kb.answers.regions import Kind, split_inline

_GREEK = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "varepsilon": "ε",
    "zeta": "ζ", "eta": "η", "theta": "θ", "vartheta": "ϑ", "iota": "ι", "kappa": "κ",
    "lambda": "λ", "mu": "μ", "nu": "ν", "xi": "ξ", "pi": "π", "rho": "ρ", "sigma": "σ",
    "tau": "τ", "upsilon": "υ", "phi": "φ", "varphi": "φ", "chi": "χ", "psi": "ψ",
    "omega": "ω", "Gamma": "Γ", "Delta": "Δ", "Theta": "Θ", "Lambda": "Λ", "Xi": "Ξ",
    "Pi": "Π", "Sigma": "Σ", "Phi": "Φ", "Psi": "Ψ", "Omega": "Ω",
}
_SYMBOLS = {
    "cdot": "·", "times": "×", "div": "÷", "pm": "±", "mp": "∓", "approx": "≈", "sim": "∼",
    "simeq": "≃", "equiv": "≡", "neq": "≠", "ne": "≠", "le": "≤", "leq": "≤", "ge": "≥",
    "geq": "≥", "ll": "≪", "gg": "≫", "propto": "∝", "infty": "∞", "partial": "∂",
    "nabla": "∇", "sum": "Σ", "prod": "∏", "int": "∫", "in": "∈", "notin": "∉",
    "subset": "⊂", "to": "→", "rightarrow": "→", "leftarrow": "←", "Rightarrow": "⇒",
    "mapsto": "↦", "ldots": "…", "cdots": "⋯", "dots": "…", "top": "ᵀ", "circ": "∘",
    "odot": "⊙", "otimes": "⊗", "langle": "⟨", "rangle": "⟩", "lvert": "|", "rvert": "|",
    "vert": "|", "lVert": "‖", "rVert": "‖", "|": "‖", "mid": "|", "prime": "′",
    "{": "{", "}": "}", "%": "%", "$": "$", "_": "_", "&": "&", "#": "#",
    ",": " ", ";": " ", ":": " ", "!": "", " ": " ", "quad": " ", "qquad": " ",
}
# Operators written upright as words: the name is the text.
_WORDS = {"log", "ln", "exp", "sin", "cos", "tan", "max", "min", "arg", "det", "lim", "sup",
          "inf", "Var", "var", "mean", "std", "tr"}
_FONTS = {"mathcal", "mathrm", "mathbf", "mathit", "mathsf", "mathbb", "boldsymbol", "bm",
          "text", "textrm", "textit", "textbf", "operatorname", "mathop", "mbox"}
_ACCENTS = {"hat": "\u0302", "widehat": "\u0302", "bar": "\u0304", "overline": "\u0304",
            "tilde": "\u0303", "widetilde": "\u0303", "dot": "\u0307", "vec": "\u20d7"}
_SIZING = {"left", "right", "big", "Big", "bigl", "bigr", "Bigl", "Bigr", "displaystyle",
           "textstyle", "limits", "nolimits"}

_SUBSCRIPT = dict(zip("0123456789+-−=()aehijklmnoprstuvxβγρφχ",
                      "₀₁₂₃₄₅₆₇₈₉₊₋₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓᵦᵧᵨᵩᵪ"))
_SUPERSCRIPT = dict(zip("0123456789+-−=()abcdefghijklmnoprstuvwxyzABDEGHIJKLMNOPRTUVWβγδθφχ"
                        "ᵀ′",
                        "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁻⁼⁽⁾ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖʳˢᵗᵘᵛʷˣʸᶻᴬᴮᴰᴱᴳᴴᴵᴶᴷᴸᴹᴺᴼᴾᴿᵀᵁⱽᵂᵝᵞᵟᶿᵠᵡ"
                        "ᵀ′"))

_TOKEN = re.compile(r"\\(?:[A-Za-z]+|.)|[{}_^]|\s+|.", re.DOTALL)


class _Reader:
    """TeX tokens read left to right into text; a group ``{...}`` is read as one item."""

    def __init__(self, tex: str):
        self.tokens = _TOKEN.findall(tex)
        self.at = 0

    def more(self) -> bool:
        return self.at < len(self.tokens)

    def take(self) -> str:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def text(self, until: str | None = None) -> str:
        out: list[str] = []
        while self.more():
            if until is not None and self.tokens[self.at] == until:
                self.at += 1
                break
            out.append(self.item(out))
        return "".join(out)

    def argument(self) -> str:
        """The next item: a group's text or one token's."""
        while self.more() and self.tokens[self.at].isspace():
            self.at += 1
        if not self.more():
            return ""
        if self.tokens[self.at] == "{":
            self.at += 1
            return self.text(until="}")
        return self.item([])

    def _skip_space_before_operand(self) -> None:
        """TeX drops the space after a command word; kept before a relation or operator
        ("γ = 1"), dropped before what it applies to ("∂L")."""
        at = self.at
        if at + 1 < len(self.tokens) and self.tokens[at].isspace() and (
                self.tokens[at + 1].isalnum() or self.tokens[at + 1][:1] in "\\{"):
            self.at += 1

    def item(self, before: list[str]) -> str:
        token = self.take()
        if token == "{":
            return self.text(until="}")
        if token == "}":
            return ""
        if token in ("_", "^"):
            return _script(self.argument(), _SUBSCRIPT if token == "_" else _SUPERSCRIPT)
        if token.isspace():
            return " " if before and not before[-1].endswith(" ") else ""
        if not token.startswith("\\"):
            return "−" if token == "-" else token  # a real minus sign, as in ×10⁻³
        name = token[1:]
        if name in _GREEK or name in _SYMBOLS:
            if name.isalpha():
                self._skip_space_before_operand()
            return _GREEK.get(name) or _SYMBOLS[name]
        if name in _WORDS:
            return name
        if name in _FONTS:
            return self.argument()
        if name in _ACCENTS:
            base = self.argument()
            return base + _ACCENTS[name] if len(base) == 1 else base
        if name in _SIZING:
            return ""
        if name == "frac":
            top, bottom = self.argument(), self.argument()
            return f"{_grouped(top)}/{_grouped(bottom)}"
        if name == "sqrt":
            return "√" + _grouped(self.argument())
        return name  # an unknown command: its name is the best plain text for it


def _grouped(text: str) -> str:
    """``text`` as one operand: in parentheses when it is more than one symbol or number."""
    text = text.strip()
    simple = re.fullmatch(r"√?(?:[\w.′]+|\(.*\))|\[.*\]|\|.*\|", text) is not None
    return text if simple else f"({text})"


def _script(text: str, table: dict[str, str]) -> str:
    """A sub- or superscript in Unicode's small characters, or on the line when one of its
    characters has none (see the module's rule)."""
    text = text.replace(" ", "")
    if text and all(c in table for c in text):
        return "".join(table[c] for c in text)
    return text


@lru_cache(maxsize=4096)  # answers repeat their symbols ($\gamma$, $\sigma_B^2$) many times
def tex_to_text(tex: str) -> str:
    """One piece of TeX math as plain Unicode text."""
    return " ".join(_Reader(tex).text().split())


def plain_text(text: str) -> str:
    """Prose with inline math (``$...$``, found as answers' prose is read) as plain Unicode:
    math converted, code spans without their backticks, ``\\$`` as ``$``."""
    out = []
    for region in split_inline(text).regions:
        if region.kind in (Kind.INLINE_MATH, Kind.DISPLAY_MATH):
            out.append(tex_to_text(region.content))
        elif region.kind in (Kind.CODE_SPAN, Kind.ESCAPED_DOLLAR):
            out.append(region.content)
        else:
            out.append(region.text)
    return "".join(out)
