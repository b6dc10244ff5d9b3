"""Numbers as people read them: a few significant digits, powers of ten as ×10⁻³ (never
``1.3e-03``), a real minus sign, and arrays as short lists rather than numpy's repr."""
from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
# A number in e-notation on its own ("1.3e-03", "1e3"), not part of a word or a longer number.
_EXPONENT = re.compile(
    r"(?<![\w.])(?P<mantissa>[-+]?\d(?:\.\d*)?)e(?P<exponent>[-+]?\d+)(?![\w.])")
SHOWN_ELEMENTS = 6  # an array longer than this shows its first three and last two elements


def powers_of_ten(text: str) -> str:
    """``text`` with every ``1.3e-03`` written ``1.3×10⁻³`` (``1e+06`` as ``10⁶``)."""
    def written(match: re.Match) -> str:
        mantissa, exponent = match["mantissa"], int(match["exponent"])
        power = "10" + str(exponent).translate(_SUPERSCRIPT)
        return power if mantissa.lstrip("+-") in ("1", "1.", "1.0") and not mantissa.startswith(
            "-") else f"{mantissa}×{power}"

    return _EXPONENT.sub(written, text)


def number(value: Any, digits: int = 4) -> str:
    """A number with ``digits`` significant digits, plain between 10⁻³ and 10⁵ and as a power
    of ten outside; integers and booleans as they are."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value)).replace("-", "−")
    value = float(value)
    if not math.isfinite(value):
        return {math.inf: "∞", -math.inf: "−∞"}.get(value, "NaN")
    if value == 0 or 1e-3 <= abs(value) < 1e5:
        text = f"{value:.{digits}g}"
        if "e" in text:  # .g switches to exponents for large integers-valued floats
            text = f"{value:.0f}"
    else:
        mantissa, exponent = f"{value:.{digits - 1}e}".split("e")
        mantissa = mantissa.rstrip("0").rstrip(".")  # 1.300e-03 -> 1.3e-03
        text = powers_of_ten(f"{mantissa}e{exponent}")
    return text.replace("-", "−")


def quantity(value: Any, digits: int = 4) -> str:
    """A measured value as a claim's detail shows it: a number, or an array as a short list
    ("[0.1, 0.316, 1, …, 10, 31.6]", 3 significant digits each)."""
    if isinstance(value, np.ndarray) and value.ndim > 0:
        flat = value.ravel()
        shown = ([number(x, 3) for x in flat] if flat.size <= SHOWN_ELEMENTS else
                 [*(number(x, 3) for x in flat[:3]), "…", *(number(x, 3) for x in flat[-2:])])
        shape = f" ({'×'.join(map(str, value.shape))})" if value.ndim > 1 else ""
        return "[" + ", ".join(shown) + "]" + shape
    if isinstance(value, (np.generic, np.ndarray)):
        value = value.item()
    if isinstance(value, (bool, int, float)):
        return number(value, digits)
    return str(value)
