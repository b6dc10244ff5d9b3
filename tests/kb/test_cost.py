"""The cost of a rerun, estimated from its parameters (kb.jobs.cost)."""
from __future__ import annotations

from engine.catalog import experiments, get_experiment
from kb.jobs.cost import KINDS, duration, estimate, suggestion


def test_every_integer_parameter_of_every_experiment_has_a_kind():
    unclassified = sorted(f"{e.name}.{name}" for e in experiments().values()
                          if e.fn.__module__.startswith("engine.")  # not the tests' own
                          for name, spec in e.params.items()
                          if spec.kind is int and name not in KINDS)
    assert unclassified == [], "classify them in kb/jobs/cost.py"


def test_the_heavy_rerun_of_the_reader_experience_issue_is_estimated_far_beyond_a_minute():
    # gamma_beta_undo took 1.1 s at its own settings here; these settings ran past 60 s.
    experiment = get_experiment("gamma_beta_undo")
    own = experiment.resolve({})
    heavy = experiment.resolve({"steps": 2000, "width": 256, "depth": 12, "train_size": 20000,
                                "probe": 20000, "batch": 512})
    guess = estimate(own, 1.1, heavy)
    assert guess.seconds > 600
    assert [name for name, _ in guess.grown[:3]] == ["width", "depth", "batch"]
    assert suggestion(guess, heavy, own, 48) is None  # no one parameter is enough
    # One that a single parameter brings within the limit: how far to lower it.
    wider = experiment.resolve({"width": 256})  # weights grow with the square of the width
    guess = estimate(own, 1.1, wider)
    assert round(guess.seconds, 1) == 70.4 and suggestion(guess, wider, own, 48) == ("width", 211)


def test_smaller_settings_cost_less_and_free_parameters_nothing():
    own = {"steps": 300, "every": 15, "probe": 512, "width": 32, "train_size": 10}
    assert estimate(own, 2.0, {**own, "steps": 150, "probe": 256, "train_size": 5}).seconds == 1.0
    assert estimate(own, 2.0, {**own, "every": 1}).seconds == 2.0
    # Data sizes add to the training's work: the larger term counts, not their product.
    assert estimate(own, 2.0, {**own, "steps": 600, "probe": 1024}).seconds == 4.0
    assert estimate(own, 2.0, {**own, "probe": 1024, "train_size": 15}).seconds == 4.0
    assert estimate(own, 2.0, {**own, "width": 64, "probe": 2048}).seconds == 32.0


def test_durations_read_as_a_reader_says_them():
    assert [duration(s) for s in (0.114, 4.0, 40.2, 200, 7200)] == [
        "0.11 s", "4 s", "40 s", "3 min", "2 h"]
