"""The registry imports no experiment or figure; the catalog imports the experiments (not
matplotlib) and, for drawings, the figures; lookups see experiments registered at run time."""
import subprocess
import sys

import pytest

from engine.catalog import drawer, experiments, get_experiment
from engine.registry import (MAX_SEED, Param, ParameterError, UnknownExperimentError, check_seed,
                             experiment, figure)


def loaded_after(statement: str) -> set[str]:
    """The engine modules, and matplotlib if so, that a fresh interpreter has after ``statement``."""
    code = (f"import sys\n{statement}\n"
            "print(' '.join(m for m in sys.modules if m.startswith(('engine', 'matplotlib'))))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(run.stdout.split())


def test_the_registry_and_a_figure_module_import_no_experiment():
    for statement in ("import engine.registry", "import engine.figures.affine"):
        loaded = loaded_after(statement)
        assert not {m for m in loaded if m.startswith(("engine.experiments", "engine.catalog"))}
        assert "matplotlib" not in loaded
    assert "engine.figures.optimization" not in loaded_after("import engine.figures.affine")


def test_the_catalog_imports_every_experiment_but_no_figure_and_not_matplotlib():
    loaded = loaded_after("import engine.catalog")
    assert "engine.experiments.drift" in loaded and "engine.experiments.noise" in loaded
    assert not {m for m in loaded if m.startswith(("engine.figures", "matplotlib"))}


def test_lookups_and_their_errors():
    assert get_experiment("batch_stat_noise").name == "batch_stat_noise"
    assert "noise_vs_batch" in get_experiment("batch_stat_noise").figure_names
    assert {"batch_stat_noise", "cats_covariate_shift"} <= set(experiments())
    with pytest.raises(UnknownExperimentError, match=r"^unknown experiment 'nope' \(known: .*"
                                                     r"batch_stat_noise, bn_backward_check, "):
        get_experiment("nope")
    assert callable(drawer("batch_stat_noise", "noise_vs_batch"))
    with pytest.raises(UnknownExperimentError,
                       match="^experiment 'batch_stat_noise' has no drawn figure 'nope'$"):
        drawer("batch_stat_noise", "nope")
    with pytest.raises(UnknownExperimentError, match="^unknown experiment 'nope'"):
        drawer("nope", "noise_vs_batch")


def test_experiments_and_drawings_registered_at_run_time_are_found_in_either_order():
    @figure("test_catalog_late", "line")
    def draw_line(result, fig):
        pass

    assert "test_catalog_late" not in experiments()

    @experiment("test_catalog_late", params={"n": Param(int, 3, 1, 10)}, figures=("line",))
    def late(rng, n):
        return {"n": n}

    assert get_experiment("test_catalog_late").run({"n": 3}, 0) == {"n": 3}
    assert drawer("test_catalog_late", "line") is draw_line
    with pytest.raises(ValueError, match="figure 'line' of 'test_catalog_late' is drawn twice"):
        figure("test_catalog_late", "line")(draw_line)
    with pytest.raises(ValueError, match="experiment 'test_catalog_late' declares no figure 'x'"):
        figure("test_catalog_late", "x")(draw_line)

    figure("test_catalog_undeclared", "x")(draw_line)
    with pytest.raises(ValueError, match="'test_catalog_undeclared' declares no figure 'x'"):
        experiment("test_catalog_undeclared")(lambda rng: {})
    assert "test_catalog_undeclared" not in experiments()


def test_one_rule_for_seeds():
    assert check_seed(0) == 0 and check_seed(MAX_SEED) == MAX_SEED == 2**32 - 1
    for bad in (-1, MAX_SEED + 1, 1.0, True, "3", None):
        with pytest.raises(ParameterError,
                           match=rf"^seed must be an integer in \[0, {MAX_SEED}\], got "):
            check_seed(bad)
