"""benchmarks/eurosat_full.py: its arguments and its one-line refusals offline (it is not run here:
it needs the real EuroSAT, ImageNet weights and, to finish in reasonable time, a GPU)."""
import os

import pytest

from tests.benchmark_modules import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("eurosat_full")


def test_defaults_are_the_documented_run(bench):
    args = bench.parse_args([])
    assert (args.data, args.backbone, args.weights, args.image_size, args.epochs, args.batch_size) == (
        "tfds:eurosat/rgb", "EfficientNetV2S", "imagenet", 224, 15, 64)


@pytest.mark.parametrize("argv", [["--epochs", "0"], ["--image-size", "16"], ["--backbone", "ResNet50"]])
def test_bad_arguments_are_refused(bench, argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        bench.parse_args(argv)
    assert exit_.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_offline_without_cached_weights_is_one_line(bench, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.keras/models cache
    args = bench.parse_args(["--backbone", "EfficientNetV2B0"])
    with pytest.raises(SystemExit) as exit_:
        bench.preflight(args, is_reachable=lambda url: False)
    message = str(exit_.value)
    assert "\n" not in message
    assert "efficientnetv2-b0_notop.h5" in message and "--weights FILE" in message and "offline" in message


def test_cached_weights_or_a_reachable_host_pass(bench, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    args = bench.parse_args([])
    bench.preflight(args, is_reachable=lambda url: True)  # online: nothing to refuse
    cached = bench.keras_weights_file("EfficientNetV2S")
    os.makedirs(os.path.dirname(cached))
    open(cached, "w").close()
    bench.preflight(args, is_reachable=lambda url: False)  # offline but cached


def test_missing_local_data_is_one_line(bench, tmp_path):
    args = bench.parse_args(["--data", str(tmp_path / "EuroSAT.zip"), "--weights", str(tmp_path / "w.h5")])
    with pytest.raises(SystemExit) as exit_:
        bench.preflight(args, is_reachable=lambda url: False)
    assert "does not exist" in str(exit_.value) and "tfds:eurosat/rgb" in str(exit_.value)
