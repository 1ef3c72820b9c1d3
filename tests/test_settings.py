"""One declaration per setting (issue 24): the models' fields make the flags, the help, the YAML keys
and --set; the orchestrators are a registry."""
import dataclasses
import typing

import pytest
import yaml

import pipeline_runner
from components import settings
from components.hparams import HParams
from pipeline import runners
from pipeline.config import PipelineConfig
from pipeline.mapping import cli as map_cli
from pipeline.mapping.options import MapOptions


def _config(*argv):
    return pipeline_runner.config_from_args(pipeline_runner.build_parser().parse_args(list(argv)))


def _field_names(cls, prefix=""):
    """Every leaf field of a settings dataclass, read with the stdlib (not with settings.keys)."""
    out = []
    for field in dataclasses.fields(cls):
        inner = typing.get_type_hints(cls)[field.name]
        if dataclasses.is_dataclass(inner):
            out += _field_names(inner, f"{prefix}{field.name}.")
        else:
            out.append(prefix + field.name)
    return out


# A valid value other than the default for the keys whose changed value cannot be derived from
# the type alone (they are validated together with another key, or name something that must exist).
CHANGED = {
    "hparams.backbone": "EfficientNetV2B1",
    "hparams.weights": "none",
    "training_accelerator_type": None,  # needs a count too: covered by the pair below
    "training_accelerator_count": None,
}


def _changed(cls, name, default):
    kind = settings.choices(cls, name)
    if kind:
        return next(c for c in kind if c != default)
    if isinstance(default, bool):
        return not default
    if isinstance(default, int):
        return default + 1
    if isinstance(default, float):
        return default / 2 if default else 0.5
    if isinstance(default, str):
        return default + "x"
    if isinstance(default, list):
        return ["--x=1"]
    kind = typing.get_args(settings.model_fields(cls)[name].annotation)[0]  # Optional[X] with a None default
    return True if kind is bool else 96  # jit_compile, image_size


def _owner(key):
    return (HParams, key.split(".", 1)[1]) if key.startswith("hparams.") else (PipelineConfig, key)


def test_every_field_is_a_key_and_set_reaches_each_one():
    keys = settings.keys(PipelineConfig)
    assert keys == _field_names(PipelineConfig) and len(keys) == len(set(keys))
    flagged = set(pipeline_runner.build_parser().parse_args([]).settings_dests)
    default = PipelineConfig()
    for key in keys:
        cls, name = _owner(key)
        current = getattr(default.hparams if cls is HParams else default, name)
        value = CHANGED.get(key, _changed(cls, name, current))
        if value is None:
            continue
        text = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
        got = _config("--set", f"{key}={text}")
        assert getattr(got.hparams if cls is HParams else got, name) == value, key
        assert got != default, key
        info = settings.model_fields(cls)[name]
        if (info.json_schema_extra or {}).get("group"):  # declared with a group: a flag too
            assert key in flagged, key
    pair = _config("--set", "training_accelerator_type=NVIDIA_L4", "--set", "training_accelerator_count=1")
    assert (pair.training_accelerator_type, pair.training_accelerator_count) == ("NVIDIA_L4", 1)


def test_the_common_flags_keep_their_spelling():
    usage = pipeline_runner.build_parser().format_usage()
    for option in ("--data", "--epochs", "--batch-size", "--no-augment", "--augment", "--no-cache", "--pipeline-root",
                   "--machine-type", "--accelerator-type", "--accelerator-count", "--min-accuracy", "--runner"):
        assert f"[{option} " in usage or f"[{option}]" in usage, option


def test_help_text_and_default_come_from_the_model(monkeypatch):
    info = PipelineConfig.__pydantic_fields__["min_accuracy"]
    monkeypatch.setattr(info, "description", "bless above THIS bar")
    hp = HParams.__pydantic_fields__["batch_size"]
    monkeypatch.setattr(hp, "description", "images per STEP")
    monkeypatch.setattr(hp, "default", 48)
    text = " ".join(pipeline_runner.build_parser().format_help().split())
    assert "--min-accuracy MIN_ACCURACY bless above THIS bar (default 0.8)" in text
    assert "--batch-size BATCH_SIZE images per STEP (default 48)" in text


def test_choices_are_the_models_literals():
    parser = pipeline_runner.build_parser()
    actions = {a.option_strings[0] if a.option_strings else a.dest: a for a in parser._actions}
    assert tuple(actions["--precision"].choices) == typing.get_args(
        HParams.__pydantic_fields__["precision"].annotation)
    assert tuple(actions["--augment"].choices) == ("full", "flips", "none")
    assert actions["--runner"].choices == runners.names()


def test_precedence_defaults_config_flags_set(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("min_accuracy: 0.5\nhparams: {epochs: 4, batch_size: 8}\n")
    cfg = _config("--config", str(path), "--epochs", "5", "--set", "hparams.epochs=6", "--set", "min_macro_f1=0.9")
    assert (cfg.hparams.epochs, cfg.hparams.batch_size, cfg.min_accuracy, cfg.min_macro_f1) == (6, 8, 0.5, 0.9)
    assert _config("--epochs", "5", "--set", "hparams.batch_size=32").hparams.batch_size == 32
    assert _config("--set", "extra_beam_args=[--a=1, --b=2]").extra_beam_args == ["--a=1", "--b=2"]
    assert _config("--set", "data=synthetic/all:300").data == "synthetic/all:300"
    assert _config("--demo", "--set", "hparams.epochs=3").hparams.epochs == 3  # --set over the demo too


@pytest.mark.parametrize("item, message", [
    ("hparams.batch_sise=32", "error: --set 'hparams.batch_sise=32': unknown configuration key 'hparams.batch_sise'; "
                              "did you mean 'hparams.batch_size'?"),
    ("batch_size=32", "error: --set 'batch_size=32': unknown configuration key 'batch_size'; "
                      "did you mean 'hparams.batch_size'?"),
    ("hparams.batch_size=abc", "error: config key 'hparams.batch_size': got 'abc', expected a valid integer, "
                               "unable to parse string as an integer"),
    ("min_accuracy=2", "error: config key 'min_accuracy': got 2, expected a number <= 1"),
    ("hparams.precision=fp8", "error: config key 'hparams.precision': got 'fp8', expected 'auto', 'float32', "
                              "'mixed_float16' or 'mixed_bfloat16'"),
    ("hparams.batch_size", "error: --set 'hparams.batch_size': give KEY=VALUE, e.g. --set hparams.batch_size=32"),
])
def test_set_errors_are_one_line(item, message, tmp_path, capsys):
    assert pipeline_runner.main(["--set", item, "--output-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == message + "\n"


def test_yaml_keys_are_the_field_names(tmp_path):
    """A config written as YAML from the dataclass (asdict: its field names) reads back equal."""
    config = PipelineConfig(data="synthetic:300", min_accuracy=0.6, extra_beam_args=["--a=1"]).replace(
        hparams={"epochs": 3, "augment": "flips", "jit_compile": False})
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(dataclasses.asdict(config)))
    assert _config("--config", str(path)) == config


def test_error_lines_name_the_declared_flag(monkeypatch):
    """Flag names inside error lines come from the field's declaration (runners' checks, config)."""
    info = PipelineConfig.__pydantic_fields__["pipeline_root_uri"]
    monkeypatch.setattr(info, "json_schema_extra", {**info.json_schema_extra, "flag": "--root"})
    problems = runners.cloud_problems(PipelineConfig(), runners.KUBEFLOW)
    assert problems[0].startswith("missing --root (config key 'pipeline_root_uri'): ")
    with pytest.raises(ValueError, match="set both --accelerator-type and --accelerator-count"):
        PipelineConfig(training_accelerator_count=1)


def test_a_registered_runner_is_a_choice_and_is_dispatched(monkeypatch, tmp_path):
    launched = []

    def launch(config, how):
        launched.append((config.output_dir, how.output))
        return 0

    fake = runners.Runner("fake", "a test runner", infra_gate="off", on_cloud=False, launch=launch)
    monkeypatch.setitem(runners.registry._RUNNERS, "fake", fake)
    assert "fake" in pipeline_runner.build_parser().format_help()
    assert pipeline_runner.main(["--runner", "fake", "--output-dir", str(tmp_path), "--output", "x.json"]) == 0
    assert launched == [(str(tmp_path), "x.json")]


def test_the_vertex_path_checks_the_settings_once(tmp_path, monkeypatch):
    """compile + submit (the API call replaced): check_config ran three times before issue 24."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform

    from pipeline.runners import checks

    calls = []
    real = checks.cloud_problems
    monkeypatch.setattr(checks, "cloud_problems", lambda *a: calls.append(a) or real(*a))
    monkeypatch.setattr(aiplatform.PipelineJob, "submit", lambda self, service_account=None: None)
    monkeypatch.setattr(aiplatform.PipelineJob, "resource_name", "projects/p/locations/europe-west4/pipelineJobs/1")
    real_job = aiplatform.PipelineJob
    monkeypatch.setattr(aiplatform, "PipelineJob",
                        lambda **kw: real_job(**{**kw, "credentials": AnonymousCredentials()}))
    argv = ["--runner", "vertex", "--data", "gs://b/eurosat.zip", "--pipeline-root", "gs://b/root", "--image", "i:1",
            "--project", "p", "--region", "europe-west4", "--output", str(tmp_path / "p.json")]
    assert pipeline_runner.main(argv) == 0
    assert len(calls) == 1


def test_map_flags_come_from_map_options(monkeypatch):
    parser = map_cli.build_map_parser()
    base = ["--input", "x.tif", "--output", "out", "--model", "m"]
    assert map_cli.map_options(parser.parse_args(base)) == MapOptions()
    got = map_cli.map_options(parser.parse_args(base + ["--stride", "32", "--dn-range", "0,3000", "--no-cloud-mask"]))
    assert (got.stride, got.dn_range, got.cloud_mask, got.batch_size) == (32, (0.0, 3000.0), False, 64)
    text = " ".join(parser.format_help().split())
    assert "(default 0,2750)" in text and "--beam-runner {direct,dataflow}" in text
    monkeypatch.setattr(MapOptions.__dataclass_fields__["batch_size"], "default", 16)
    assert "patches per model call or request (default 16)" in " ".join(map_cli.build_map_parser().format_help().split())
