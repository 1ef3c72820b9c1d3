import pytest

import pipeline_runner
from components.data_sources import SYNTHETIC_BYTES_PER_EXAMPLE, source_bytes
from pipeline.config import DEMO_HPARAMS, IN_PROCESS_BELOW_BYTES, PipelineConfig, demo_config
from pipeline.data import parse_synthetic, source_modality


def _config(*argv):
    return pipeline_runner.config_from_args(pipeline_runner.build_parser().parse_args(list(argv)))


def test_defaults():
    cfg = _config()
    assert cfg == PipelineConfig()
    assert cfg.hparams.backbone == "EfficientNetV2B0" and cfg.hparams.weights == "imagenet"


def test_flags_reach_the_config_and_hparams():
    cfg = _config("--data", "synthetic:300", "--output-dir", "/tmp/x", "--epochs", "3",
                  "--batch-size", "16", "--backbone", "EfficientNetV2B1", "--weights", "none",
                  "--learning-rate", "0.01", "--min-accuracy", "0.5", "--no-cache",
                  "--head-epochs", "0", "--precision", "mixed_bfloat16", "--no-augment")
    assert cfg.data == "synthetic:300" and cfg.output_dir == "/tmp/x" and not cfg.enable_cache
    assert cfg.min_accuracy == 0.5
    hp = cfg.hparams
    assert (hp.epochs, hp.batch_size, hp.backbone, hp.weights, hp.learning_rate) == (
        3, 16, "EfficientNetV2B1", "none", 0.01)
    assert (hp.head_epochs, hp.precision, hp.augment) == (0, "mixed_bfloat16", "none")
    assert _config("--backbone", "https://tfhub.dev/google/imagenet/efficientnet_v2_imagenet21k_xl/feature_vector/2"
                   ).hparams.input_size == 512


def test_demo_is_small_synthetic_and_offline():
    cfg = _config("--demo")
    assert cfg == demo_config()
    assert cfg.data.startswith("synthetic:") and cfg.hparams.weights == "none"
    assert cfg.hparams.epochs == DEMO_HPARAMS["epochs"]
    assert _config("--demo", "--epochs", "2").hparams.epochs == 2  # flags override the demo


def test_yaml_config_then_flags(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data: synthetic:400\nmin_macro_f1: 0.6\nhparams:\n  epochs: 4\n  batch_size: 8\n")
    cfg = _config("--config", str(path), "--epochs", "5")
    assert cfg.data == "synthetic:400" and cfg.min_macro_f1 == 0.6
    assert cfg.hparams.epochs == 5 and cfg.hparams.batch_size == 8


def test_bad_config_values_are_clear_errors(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text("dataa: x\n")
    assert pipeline_runner.main(["--config", str(path)]) == 2
    assert "unknown configuration key 'dataa'; did you mean 'data'?" in capsys.readouterr().err
    assert pipeline_runner.main(["--epochs", "0"]) == 2
    assert "config key 'hparams.epochs': got 0, expected a number >= 1" in capsys.readouterr().err
    assert pipeline_runner.main(["--backbone", "ResNet50"]) == 2
    assert "'hparams.backbone': got 'ResNet50', unknown backbone" in capsys.readouterr().err


def test_unambiguous_values_are_coerced(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text('min_accuracy: "0.9"\nbeam_num_workers: "2"\nhparams: {epochs: "10", learning_rate: 1, '
                    'augment: "false"}\n')
    cfg = _config("--config", str(path))
    assert cfg.min_accuracy == 0.9 and isinstance(cfg.min_accuracy, float)
    assert cfg.beam_num_workers == 2
    assert (cfg.hparams.epochs, cfg.hparams.learning_rate, cfg.hparams.augment) == (10, 1.0, "none")
    assert isinstance(cfg.hparams.learning_rate, float)


# (YAML text or flags, what the one error line must say). Each exits 2 with that one line.
BAD_CONFIGS = [
    ("hparams: {epochs: ten}", "config key 'hparams.epochs': got 'ten', expected a valid integer"),
    ("hparams: {epochs: 2.5}", "'hparams.epochs': got 2.5, expected a valid integer"),
    ("hparams: {epochs: true}", "'hparams.epochs': got True, expected a number, not true/false"),
    ("hparams: {epoch: 3}", "unknown configuration key 'hparams.epoch'; did you mean 'hparams.epochs'?"),
    ("hparams: {dropout: 1.5}", "'hparams.dropout': got 1.5, expected a number < 1"),
    ("hparams: {precision: fp8}", "'hparams.precision': got 'fp8', expected 'auto', 'float32'"),
    ("hparams: 5", "config key 'hparams': got 5, expected a mapping"),
    ("min_acuracy: 0.9", "unknown configuration key 'min_acuracy'; did you mean 'min_accuracy'?"),
    ("min_accuracy: high", "config key 'min_accuracy': got 'high', expected a valid number"),
    ("min_accuracy: .nan", "config key 'min_accuracy': got nan, expected a finite number"),
    ("max_drop: .inf", "config key 'max_drop': got inf, expected a finite number"),
    ("tuner_trials: 0", "config key 'tuner_trials': got 0, expected a number >= 1"),
    ("beam_runner: flink", "config key 'beam_runner': got 'flink', expected 'direct' or 'dataflow'"),
    ("extra_beam_args: --x", "config key 'extra_beam_args': got '--x', expected a valid list"),
    ("data: [", "is not valid YAML (line 2, column 1)"),
    ("- data", "expected a mapping of configuration keys, got list"),
    (["--min-accuracy", "2"], "config key 'min_accuracy': got 2.0, expected a number <= 1"),
    (["--max-bad-fraction", "nan"], "config key 'max_bad_fraction': got nan, expected a finite number"),
    (["--learning-rate", "inf"], "config key 'hparams.learning_rate': got inf, expected a finite number"),
    (["--max-drop", "-0.1"], "config key 'max_drop': got -0.1, expected a number >= 0"),
    (["--accelerator-count", "1"], "set both --accelerator-type and --accelerator-count"),
]


@pytest.mark.parametrize("bad,message", BAD_CONFIGS, ids=[str(b) for b, _ in BAD_CONFIGS])
def test_bad_config_is_one_line_and_exit_2(bad, message, tmp_path, capsys):
    if isinstance(bad, list):
        argv = bad
    else:
        path = tmp_path / "c.yaml"
        path.write_text(bad + "\n")
        argv = ["--config", str(path)]
    assert pipeline_runner.main(argv + ["--output-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err, err


def test_config_file_that_is_not_a_file(tmp_path, capsys):
    assert pipeline_runner.main(["--config", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"error: --config {str(tmp_path)!r} is a folder; give a YAML file of configuration keys\n"
    assert pipeline_runner.main(["--config", str(tmp_path / "missing.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_hparams_keep_their_dataclass_api():
    import dataclasses

    from components.hparams import HParams

    hp = HParams.from_dict({"epochs": "3"})
    assert hp.epochs == 3 and HParams.from_dict(hp.to_dict()) == hp
    assert dataclasses.replace(hp, batch_size=8).batch_size == 8
    with pytest.raises(dataclasses.FrozenInstanceError):
        hp.epochs = 4
    with pytest.raises(ValueError):  # built directly: validated too (pydantic's error)
        HParams(epochs=0)


def test_paths_live_under_the_output_dir():
    cfg = PipelineConfig(output_dir="/o", pipeline_name="p", model_name="m")
    assert cfg.pipeline_root == "/o/pipelines/p"
    assert cfg.metadata_path == "/o/metadata/p.sqlite"
    assert cfg.serving_dir == "/o/serving/m"


def test_beam_args_use_all_cores_when_the_input_size_is_unknown():
    assert PipelineConfig().beam_direct_running_mode == "auto"
    assert PipelineConfig().beam_pipeline_args() == [
        "--direct_running_mode=multi_processing", "--direct_num_workers=0"]
    assert PipelineConfig().for_input(None).beam_pipeline_args() == [
        "--direct_running_mode=multi_processing", "--direct_num_workers=0"]
    assert PipelineConfig(beam_direct_running_mode="in_memory").beam_pipeline_args() == [
        "--direct_running_mode=in_memory"]


def test_auto_beam_mode_runs_small_inputs_in_process_and_large_ones_in_workers():
    small, large = IN_PROCESS_BELOW_BYTES - 1, IN_PROCESS_BELOW_BYTES
    assert PipelineConfig().for_input(small).beam_pipeline_args() == ["--direct_running_mode=in_memory"]
    assert PipelineConfig(beam_num_workers=3).for_input(large).beam_pipeline_args() == [
        "--direct_running_mode=multi_processing", "--direct_num_workers=3"]
    # An explicit mode (--beam-direct-running-mode) is kept whatever the size.
    for mode in ("in_memory", "multi_threading", "multi_processing"):
        assert PipelineConfig(beam_direct_running_mode=mode).for_input(small).beam_direct_running_mode == mode
        assert PipelineConfig(beam_direct_running_mode=mode).for_input(large).beam_direct_running_mode == mode
    assert _config("--beam-direct-running-mode", "multi_processing").for_input(small).beam_direct_running_mode \
        == "multi_processing"


def test_source_bytes_of_files_folders_synthetic_and_what_is_not_local(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.tfrecord").write_bytes(b"x" * 10)
    (tmp_path / "sub" / "b.tfrecord").write_bytes(b"x" * 5)
    assert source_bytes(str(tmp_path)) == 15 and source_bytes(str(tmp_path / "a.tfrecord")) == 10
    assert source_bytes("synthetic:2000") == 2000 * SYNTHETIC_BYTES_PER_EXAMPLE["rgb"]
    assert source_bytes("synthetic/all:500") == 500 * SYNTHETIC_BYTES_PER_EXAMPLE["all"]
    for elsewhere in ("gs://bucket/eurosat", "tfds:eurosat/rgb", str(tmp_path / "missing")):
        assert source_bytes(elsewhere) is None


def test_data_specs(tmp_path):
    assert parse_synthetic("synthetic") == (2000, "rgb") and parse_synthetic("synthetic:50") == (50, "rgb")
    assert parse_synthetic("synthetic/all:30") == (30, "all") and parse_synthetic("synthetic/rgb") == (2000, "rgb")
    assert parse_synthetic(str(tmp_path)) is None
    for bad in ("synthetic:lots", "synthetic/nir:5", "synthetic:0"):
        with pytest.raises(ValueError, match="synthetic/all:N"):
            parse_synthetic(bad)
    with pytest.raises(FileNotFoundError, match="holds neither TFRecord files"):
        source_modality(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        source_modality(str(tmp_path / "nope"))


def test_modality_is_read_from_the_data_and_picks_the_schema(tmp_path):
    from pipeline.data import resolve_modality
    from schema.example_data.synthetic import write_synthetic_tfrecords

    rgb, bands = str(tmp_path / "rgb"), str(tmp_path / "bands")
    write_synthetic_tfrecords(rgb, 20)
    write_synthetic_tfrecords(bands, 20, modality="all")
    assert resolve_modality("auto", rgb) == "rgb" and resolve_modality("auto", bands) == "all"
    assert resolve_modality("auto", "synthetic/all:20") == "all" and resolve_modality("auto", "tfds:eurosat/rgb") == "rgb"
    assert resolve_modality("all", bands) == "all"
    with pytest.raises(ValueError, match="--modality rgb but the data .* is 'all'.*pass --modality all"):
        resolve_modality("rgb", bands)
    with pytest.raises(ValueError, match="Input should be 'auto', 'rgb' or 'all'"):
        PipelineConfig(modality="nir")
    assert PipelineConfig().schema_file().endswith("schema/schema.pbtxt")
    assert PipelineConfig(modality="all").schema_file().endswith("schema/schema_all.pbtxt")
    assert PipelineConfig(modality="all", schema_path="/my.pbtxt").schema_file() == "/my.pbtxt"
    bands = PipelineConfig(pipeline_name="demo").with_modality("all")
    assert (bands.modality, bands.pipeline_name, bands.model_name) == ("all", "demo-all", "eurosat-all")
    assert bands.with_modality("all") == bands  # not suffixed twice
    assert PipelineConfig().with_modality("rgb").pipeline_name == "eurosat"


def test_bad_data_is_a_clear_error_not_a_traceback(tmp_path, capsys):
    code = pipeline_runner.main(["--data", "synthetic:5", "--output-dir", str(tmp_path)])
    assert code == 2
    assert "at least 10" in capsys.readouterr().err
    code = pipeline_runner.main(["--data", str(tmp_path / "missing"), "--output-dir", str(tmp_path)])
    assert code == 2
    assert "does not exist" in capsys.readouterr().err


def test_config_file_over_the_size_limit_is_refused_unread(tmp_path, capsys):
    """Issue 26.12: a 50 MB YAML file kept the pure-Python loader busy for more than 8 minutes."""
    from components.settings import MAX_CONFIG_BYTES

    path = tmp_path / "big.yaml"
    path.write_text("#" * MAX_CONFIG_BYTES + "\nmin_accuracy: 2\n")
    assert pipeline_runner.main(["--config", str(path), "--output-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: --config {str(path)!r} is larger than 1 MB; a configuration file holds a few keys\n"


def test_many_unknown_keys_and_huge_values_give_one_short_line(tmp_path, capsys):
    """Issue 26.12: 10,000 unknown keys made one 99 KB error line; a long or nested value is quoted
    cut short (a YAML alias bomb's repr would not fit in memory)."""
    cases = {
        "keys": "".join(f"key_{i:05d}: 1\n" for i in range(10_000)),
        "string": "tuner_trials: " + "x" * 100_000 + "\n",
        "bomb": "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
                + "".join(f"{n}: &{n} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
                          for p, n in zip("abcde", "bcdef"))
                + "hparams: *f\n",
    }
    for name, text in cases.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        assert pipeline_runner.main(["--config", str(path), "--output-dir", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and len(err) < 1000, (name, len(err), err[:300])
    assert err.startswith("error: config key 'hparams': got [[[[...], [...],")


@pytest.mark.parametrize("flags, expected", [
    ([], ["--direct_running_mode=in_memory"]),  # 'auto' on 50 synthetic images: in-process
    (["--beam-direct-running-mode", "multi_processing", "--beam-num-workers", "2"],
     ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]),
])
def test_the_local_run_gives_the_dag_the_mode_for_its_input(flags, expected, tmp_path, monkeypatch):
    from pipeline import pipeline as dag
    from pipeline import runners

    class Built(Exception):
        pass

    def spy(config, **_):
        raise Built(config.beam_pipeline_args())

    monkeypatch.setattr(dag, "create_pipeline", spy)
    with pytest.raises(Built) as built:
        runners.run_local(_config("--data", "synthetic:50", "--output-dir", str(tmp_path), *flags))
    assert built.value.args[0] == expected
