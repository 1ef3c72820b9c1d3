from components.evaluation import make_eval_config
from pipeline.config import PipelineConfig
from pipeline.pipeline import create_pipeline


def test_dag_has_every_stage_wired(tmp_path):
    cfg = PipelineConfig(output_dir=str(tmp_path))
    p = create_pipeline(cfg)
    ids = sorted(c.id for c in p.components)  # topologically sorted by TFX
    assert ids == sorted(["ExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator",
                   "AnomalyCheck", "Transform", "Trainer", "latest_blessed_model_resolver", "Evaluator", "Pusher"])
    by_id = {c.id: c for c in p.components}
    upstream = {i: {u.id for u in c.upstream_nodes} for i, c in by_id.items()}
    assert upstream["Transform"] == {"ExampleGen", "ImportSchemaGen", "AnomalyCheck"}
    assert upstream["AnomalyCheck"] == {"ExampleValidator"}  # anomalies stop the run before Transform
    assert upstream["Trainer"] == {"Transform", "ImportSchemaGen", "StatisticsGen"}  # its statistics go into the export
    assert upstream["Evaluator"] == {"ExampleGen", "Trainer", "latest_blessed_model_resolver"}
    assert upstream["Pusher"] == {"Trainer", "Evaluator"}
    trainer = by_id["Trainer"].exec_properties
    assert trainer["run_fn"] == "components.trainer.run_fn"
    assert '"epochs": 10' in trainer["custom_config"]  # hyperparameters recorded in metadata
    assert by_id["Transform"].exec_properties["preprocessing_fn"] == "components.transform.preprocessing_fn"
    assert p.beam_pipeline_args == cfg.beam_pipeline_args()


def test_splits_are_60_20_20_by_source_hash(tmp_path):
    p = create_pipeline(PipelineConfig())
    example_gen = p.components[0]
    assert type(example_gen).__name__ == "EuroSATExampleGen"
    output = example_gen.exec_properties["output_config"]
    assert '"partition_feature_name": "source"' in output
    for name, buckets in (("train", 6), ("eval", 2), ("test", 2)):
        assert f'"hash_buckets": {buckets}' in output and f'"name": "{name}"' in output


def test_eval_config_blesses_on_overall_accuracy_and_macro_f1():
    cfg = make_eval_config(min_accuracy=0.9, min_macro_f1=0.85, max_drop=0.02)
    assert [list(s.feature_keys) for s in cfg.slicing_specs] == [[], ["class_name"]]
    gated = {
        m.class_name if not m.config else m.config.split('"')[3]: m.per_slice_thresholds[0]
        for spec in cfg.metrics_specs for m in spec.metrics if m.per_slice_thresholds
    }
    assert set(gated) == {"SparseCategoricalAccuracy", "macro_f1"}
    for name, bar in (("SparseCategoricalAccuracy", 0.9), ("macro_f1", 0.85)):
        assert gated[name].threshold.value_threshold.lower_bound.value == bar
        assert gated[name].threshold.change_threshold.absolute.value == -0.02
        assert list(gated[name].slicing_specs) == [cfg.slicing_specs[0]]  # overall slice only
    # Precision/recall/F1 are the argmax prediction's: no binarisation (one-vs-rest at 0.5) left.
    assert not any(s.HasField("binarize") or s.HasField("aggregate") for s in cfg.metrics_specs)
    top1 = [m for spec in cfg.metrics_specs for m in spec.metrics if m.class_name == "Top1Metric"]
    assert {m.module for m in top1} == {"components.top1_metrics"}
    assert sorted(m.config.split('"')[3] for m in top1) == sorted(
        ["macro_f1", "macro_precision", "macro_recall", "weighted_f1", "f1", "precision", "recall"])
    assert not any(m.per_slice_thresholds or m.HasField("threshold") for m in top1
                   if '"per_class"' in m.config)


def test_tuner_stage_feeds_the_trainer_when_asked(tmp_path):
    plain = create_pipeline(PipelineConfig())
    assert "Tuner" not in {c.id for c in plain.components}
    tuned = create_pipeline(PipelineConfig(tune=True, tuner_trials=2))
    by_id = {c.id: c for c in tuned.components}
    assert by_id["Tuner"].exec_properties["tuner_fn"] == "components.tuner.tuner_fn"
    assert "Tuner" in {u.id for u in by_id["Trainer"].upstream_nodes}
    assert '"tuner_trials": 2' in by_id["Tuner"].exec_properties["custom_config"]


def test_tuned_values_override_only_the_searched_knobs():
    from components.hparams import HParams
    from components.tuner import apply_tuned, search_space

    base = HParams(learning_rate=2e-3, dropout=0.25, epochs=7)
    space = search_space(base)
    assert space.get("learning_rate") == 2e-3 and space.get("dropout") == 0.25  # defaults = config
    tuned = apply_tuned(base, {"values": {"learning_rate": 5e-4, "dropout": 0.1, "label_smoothing": 0.0,
                                          "tuner/epochs": 2}})
    assert (tuned.learning_rate, tuned.dropout, tuned.label_smoothing, tuned.epochs) == (5e-4, 0.1, 0.0, 7)


def test_example_gen_is_keyed_on_the_source_and_its_settings(tmp_path):
    """TFX's cache keys an execution on its properties: the source identity (size, modification
    time), the conversion settings; not on settings that do not change the examples."""
    import json
    import os

    zpath = tmp_path / "EuroSAT_RGB.zip"
    zpath.write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip: the identity is read from the file's stat

    def props(**changes):
        return create_pipeline(PipelineConfig(data=str(zpath)).replace(**changes)).components[0].exec_properties

    base = props()
    assert json.loads(base["input_config"])["splits"][0]["pattern"] == str(zpath)
    assert json.loads(base["source_identity"])["size"] == 22 and base["max_bad_fraction"] == 0.01
    assert props(hparams={"seed": 7, "epochs": 2}) == base  # the Trainer's settings do not re-convert
    assert props(max_bad_fraction=0.1)["max_bad_fraction"] == 0.1
    os.utime(zpath, ns=(1, 1))  # touched: another identity, so the ExampleGen runs again
    assert props()["source_identity"] != base["source_identity"]
    synthetic = PipelineConfig(data="synthetic:50")
    seeds = {create_pipeline(synthetic.replace(hparams={"seed": s})).components[0].exec_properties["source_identity"]
             for s in (0, 1)}
    assert len(seeds) == 2  # synthetic data is made from the seed
