"""Every parameter is validated when it is resolved, before anything is computed: a str
parameter holding a list through its check (given, or its module's ``parse_<name>``)."""
from __future__ import annotations

import pytest

from engine.catalog import get_experiment
from engine.registry import Param, ParameterError, experiment


def must_be_odd(value: int) -> None:
    if value % 2 == 0:
        raise ValueError("it must be odd")


def parse_widths(text: str) -> list[int]:
    widths = [int(part) for part in text.split(",")]
    if any(w < 1 for w in widths):
        raise ParameterError(f"parameter 'widths' = {text!r} must list positive integers")
    return widths


@experiment("test_registry_lists", params={"widths": Param(str, "1,2"),
                                            "label": Param(str, "x"),
                                            "odd": Param(int, 1, 0, 9, check=must_be_odd)})
def lists(rng, widths, label, odd):
    return {"count": len(parse_widths(widths))}


def test_a_list_parameter_is_checked_by_its_modules_parser():
    exp = get_experiment("test_registry_lists")
    assert exp.params["widths"].check is parse_widths and exp.params["label"].check is None
    assert exp.resolve({"widths": "3,4"})["widths"] == "3,4"
    with pytest.raises(ParameterError, match="parameter 'widths' = '0,1' must list positive"):
        exp.resolve({"widths": "0,1"})
    # A ValueError from the parser names the parameter too.
    with pytest.raises(ParameterError, match=r"parameter 'widths' = '<script>' is not "
                                             r"allowed: invalid literal"):
        exp.resolve({"widths": "<script>"})


def test_a_given_check_is_used_for_any_kind():
    exp = get_experiment("test_registry_lists")
    assert exp.resolve({"odd": "3"})["odd"] == 3
    with pytest.raises(ParameterError, match="parameter 'odd' = 4 is not allowed: it must be"):
        exp.resolve({"odd": 4})


def test_a_default_that_fails_its_check_is_refused_at_registration():
    with pytest.raises(ParameterError, match="parameter 'sizes'"):
        experiment("test_registry_bad_default", params={
            "sizes": Param(str, "a", check=lambda v: int(v))})(lambda rng, sizes: {})


def test_the_engines_list_parameter_is_checked():
    exp = get_experiment("running_averages_in_training")
    if exp.params.get("batch_sizes") is None or exp.params["batch_sizes"].kind is not str:
        pytest.skip("the experiment has no str parameter batch_sizes any more")
    with pytest.raises(ParameterError, match="batch_sizes"):
        exp.resolve({"batch_sizes": "<script>"})
