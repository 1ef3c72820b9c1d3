"""The decisions of benchmarks/real_data.py and benchmarks/recipe_ablation.py, without training anything.

real_data.py's verdict (the project's mean above the plain loop's by more than the spread) is what the
recipe issue is judged on; recipe_ablation.py must refuse a mistyped variant before it trains for minutes.
"""
import numpy as np
import pytest

from schema.errors import ConfigError
from tests.benchmark_modules import load_benchmark


@pytest.fixture(scope="module")
def real_data():
    return load_benchmark("real_data")


@pytest.fixture(scope="module")
def ablation():
    return load_benchmark("recipe_ablation")


def test_the_texture_run_in_the_readme_wins_by_more_than_the_spread(real_data):
    # The per-seed test accuracies of the README's real_data.py run (textures, seeds 42, 43, 44).
    project, plain = [0.9417, 0.9660, 0.9272], [0.8592, 0.8689, 0.8495]
    margin, spread, half_range = real_data.margin_and_spread(project, plain)
    assert margin == pytest.approx(0.0858, abs=1e-4)
    assert half_range == pytest.approx(0.0194, abs=1e-4)
    # With 3 seeds the sample std exceeds the half-range: it is the spread that decides.
    assert spread == pytest.approx(np.std(project, ddof=1)) and spread > half_range
    assert margin > spread


def test_a_lead_inside_the_noise_is_not_a_win(real_data):
    margin, spread, _ = real_data.margin_and_spread([0.90, 0.95, 0.85], [0.88, 0.89, 0.87])
    assert margin == pytest.approx(0.02) and spread == pytest.approx(0.05)
    assert not margin > spread


def test_the_noisier_side_sets_the_spread(real_data):
    _, spread, half_range = real_data.margin_and_spread([0.80, 0.80, 0.80], [0.60, 0.70, 0.50])
    assert half_range == pytest.approx(0.10) and spread == pytest.approx(0.10)  # plain side: std 0.1, half-range 0.1


def test_one_seed_has_only_the_half_range(real_data):
    margin, spread, _ = real_data.margin_and_spread([0.9], [0.8])
    assert margin == pytest.approx(0.1) and spread == 0.0


def test_named_and_field_variants(ablation):
    base = {"weights": "none", "epochs": 10, "batch_size": 64, "augment": "full"}
    assert ablation.parse_variant("gradient_clip_norm=null", base) == {"gradient_clip_norm": None}
    assert ablation.parse_variant("warmup_epochs=0,augment=flips", base) == {"warmup_epochs": 0, "augment": "flips"}
    assert ablation.parse_variant("default", base) == ablation.VARIANTS["default"]


@pytest.mark.parametrize("text, names", [
    ("warmup", "warmup"),                      # neither a VARIANTS name nor FIELD=VALUE
    ("warmup_epochs=0,augment", "augment"),    # one part without a value
    ("learning_rat=1e-3", "learning_rat"),     # not an HParams field
    ("augment=sideways", "augment"),           # not one of the choices
])
def test_a_bad_variant_is_one_line_naming_it(ablation, text, names):
    base = {"weights": "none", "epochs": 10, "batch_size": 64, "augment": "full"}
    with pytest.raises(ConfigError) as err:
        ablation.parse_variant(text, base)
    assert names in str(err.value) and "\n" not in str(err.value)


def test_a_bad_variant_stops_the_command_before_it_reads_any_data(ablation, tmp_path, capsys):
    code = ablation.user_errors_to_exit(lambda: ablation.main(
        ["--examples", str(tmp_path / "absent"), "--variants", "default", "learning_rat=1e-3"]))
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error:") and "learning_rat" in err and err.count("\n") == 1


def test_gradient_norm_summary(ablation):
    norms = np.array([30.0, 20.0, 2.0, 1.5, 0.75, 0.25])
    summary = ablation.norm_summary(norms, epochs=3)
    assert summary == {"per_epoch_median": [25.0, 1.75, 0.5], "share_above_1": 0.667, "largest": 30.0}
