"""What the export and the Evaluator's model loading cost, checked as structure (no timings):
the SavedModel holds the serving signatures, not Keras' traces of every layer, and TFMA is told
the model's type instead of guessing it by loading the model with Keras."""
import os

from components.evaluation import make_eval_config


def _object_graph(export_dir):
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(export_dir, "saved_model.pb"), "rb") as f:
        saved_model.ParseFromString(f.read())
    return saved_model.meta_graphs[0].object_graph_def


def test_export_holds_no_per_layer_call_traces(exported):
    """Keras' per-layer traces (functions named call_and_return_conditional_losses under every
    layer) were half the export's CPU seconds and most of each load's; nothing calls them."""
    children = {child.local_name for node in _object_graph(exported.export_dir).nodes for child in node.children}
    assert "call_and_return_conditional_losses" not in children
    assert {"serving_default", "predict_images", "classify", "transform_features"} <= children  # the signatures stay


def test_export_carries_the_training_feature_statistics_it_was_given(exported):
    """assets.extra/training_feature_statistics.pb: what the skew gate reads from the served model."""
    from serving import training_statistics
    from tests.serving_fixtures import feature_statistics

    path = os.path.join(exported.export_dir, "assets.extra", "training_feature_statistics.pb")
    assert training_statistics.feature_statistics_path_in(exported.export_dir) == path and os.path.isfile(path)
    assert training_statistics.read_feature_statistics(exported.export_dir) == feature_statistics()
    assert training_statistics.read_feature_statistics(os.path.dirname(exported.export_dir)) is None  # no export there


def test_the_trainer_executor_hands_run_fn_the_train_split_statistics(tmp_path):
    """components/trainer_executor.py: fn_args.statistics_path is the train split's FeatureStats.pb."""
    from tfx.types import standard_artifacts

    from components.trainer_executor import statistics_path

    statistics = standard_artifacts.ExampleStatistics()
    statistics.uri, statistics.split_names = str(tmp_path), '["train", "eval"]'
    props = {"train_args": '{"splits": ["train"]}'}
    assert statistics_path({"statistics": [statistics]}, props) == str(tmp_path / "Split-train" / "FeatureStats.pb")
    assert statistics_path({}, props) is None


def test_evaluator_loads_the_model_once_and_never_with_keras(exported, monkeypatch):
    """TFMA guesses an unset model type with tf.keras.models.load_model and then loads a Keras
    model a second time; the eval config says 'tf_generic', so the signature is loaded once."""
    import tensorflow as tf
    import tensorflow_model_analysis as tfma

    keras_loads = []
    monkeypatch.setattr(tf.keras.models, "load_model", lambda *a, **k: keras_loads.append(a))
    saved_model_loads = []
    real_load = tf.compat.v1.saved_model.load_v2
    monkeypatch.setattr(tf.compat.v1.saved_model, "load_v2",
                        lambda *a, **k: saved_model_loads.append(a) or real_load(*a, **k))
    config = make_eval_config(None, min_accuracy=0.5, min_macro_f1=0.5)
    shared = tfma.default_eval_shared_model(eval_saved_model_path=exported.export_dir, eval_config=config)
    assert shared.model_type == tfma.constants.TF_GENERIC
    model = shared.model_loader.construct_fn()
    assert keras_loads == [] and len(saved_model_loads) == 1
    assert config.model_specs[0].signature_name in model.signatures
