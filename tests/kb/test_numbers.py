"""Numbers in claim details and effects, as people read them."""
from __future__ import annotations

import numpy as np
import pytest

from kb.answers.numbers import number, powers_of_ten, quantity


@pytest.mark.parametrize("value, text", [
    (0.0, "0"), (3, "3"), (-3, "−3"), (True, "True"), (0.25, "0.25"), (2.0, "2"),
    (1234.5678, "1235"), (0.00123456, "0.001235"), (0.000123456, "1.235×10⁻⁴"),
    (1.3e6, "1.3×10⁶"), (-2.5e-7, "−2.5×10⁻⁷"), (99999.0, "99999"), (1e5, "10⁵"),
    (float("nan"), "NaN"), (float("inf"), "∞"), (np.float32(0.5), "0.5"), (np.int64(7), "7"),
])
def test_numbers_keep_four_significant_digits_and_write_powers_of_ten(value, text):
    assert number(value) == text


def test_powers_of_ten_replace_every_exponent_in_a_text():
    assert powers_of_ten("from 1.3e-03 to 1e+06 and 2E5") == "from 1.3×10⁻³ to 10⁶ and 2E5"
    # As a condition writes its constants; never inside a name or a longer number.
    assert powers_of_ten("d.x < 1e-12 and d.y > 1e3") == "d.x < 10⁻¹² and d.y > 10³"
    assert powers_of_ten("d.x1e3 + v2.5e3") == "d.x1e3 + v2.5e3"


def test_arrays_are_short_lists_not_numpy_reprs():
    assert quantity(np.array([0.1, 0.31623, 1.0])) == "[0.1, 0.316, 1]"
    assert quantity(np.logspace(-1, 1, 9)) == "[0.1, 0.178, 0.316, …, 5.62, 10]"
    assert quantity(np.arange(4.0).reshape(2, 2)) == "[0, 1, 2, 3] (2×2)"
    assert quantity(np.float64(1.5e-5)) == "1.5×10⁻⁵" and quantity("relu") == "relu"
