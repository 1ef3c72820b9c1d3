"""The real-server gate (components/infra_gate.py): InfraValidator's executor run for real.

tensorflow_model_server cannot be installed here, so the `process` runner starts the dev server
(`python -m serving.server`, which takes TF Serving's flags and APIs) in its place: the executor
copies the Trainer's model into TF Serving's layout, starts the server, waits for the version to be
AVAILABLE, sends TFX's own Predict and Classify requests built from real tf.Examples, and blesses
(or not). The compiled Kubeflow/Vertex specs are checked in test_compile.py.
"""
import json
import os
import shutil
import sys

import pytest
import tensorflow as tf
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils, standard_artifacts

from components import infra_gate
from schema.example_data import synthetic
from serving import contract

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEV_SERVER = f"{sys.executable} -m serving.server"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, exported):
    """A Model artifact laid out as the Trainer writes it (<uri>/Format-Serving): a copy of the
    session's exported model (tests/conftest.py), and test examples."""
    base = tmp_path_factory.mktemp("gate")
    model = standard_artifacts.Model()
    model.uri = str(base / "model")
    shutil.copytree(exported.export_dir, os.path.join(model.uri, "Format-Serving"))
    examples = standard_artifacts.Examples()
    examples.uri = str(base / "examples")
    examples.split_names = artifact_utils.encode_split_names(["train", "test"])
    for split in ("train", "test"):  # as ExampleGen writes them: gzipped TFRecords of tf.Example
        os.makedirs(os.path.join(examples.uri, f"Split-{split}"))
        path = os.path.join(examples.uri, f"Split-{split}", "data_tfrecord-00000-of-00001.gz")
        with tf.io.TFRecordWriter(path, options="GZIP") as writer:
            for record in synthetic.synthetic_records(12, seed=3):
                writer.write(record)
    return model, examples


def _run_gate(model, examples, tmp_path, max_loading_seconds=240):
    blessing = standard_artifacts.InfraBlessing()
    blessing.uri = str(tmp_path / "blessing")
    os.makedirs(blessing.uri)
    gate = infra_gate.InfraGate(model=types.Channel(type=standard_artifacts.Model),
                                examples=types.Channel(type=standard_artifacts.Examples),
                                model_name=contract.MODEL_NAME, runner=infra_gate.PROCESS,
                                server_command=DEV_SERVER)
    exec_properties = dict(gate.exec_properties)  # the component's own serialized specs
    validation = json.loads(exec_properties["validation_spec"])
    validation.update(max_loading_time_seconds=max_loading_seconds, num_tries=1)
    exec_properties["validation_spec"] = json.dumps(validation)
    executor = infra_gate.Executor(
        base_executor.BaseExecutor.Context(tmp_dir=str(tmp_path / "tmp") + "/", unique_id="gate"))
    executor.Do({"model": [model], "examples": [examples]}, {"blessing": [blessing]}, exec_properties)
    return blessing


def test_a_model_the_server_loads_and_answers_is_blessed(trained, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", REPO)
    model, examples = trained
    blessing = _run_gate(model, examples, tmp_path)
    assert blessing.get_int_custom_property("blessed") == 1
    assert os.listdir(blessing.uri) == ["INFRA_BLESSED"]


def test_a_model_the_server_cannot_load_is_not_blessed(trained, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", REPO)
    model, examples = trained
    broken = standard_artifacts.Model()
    broken.uri = str(tmp_path / "broken")
    shutil.copytree(model.uri, broken.uri)
    variables = os.path.join(broken.uri, "Format-Serving", "variables")
    for name in os.listdir(variables):  # the graph reads, the weights do not load
        if name.startswith("variables.data"):
            with open(os.path.join(variables, name), "wb") as f:
                f.write(b"truncated")
    blessing = _run_gate(broken, examples, tmp_path, max_loading_seconds=45)
    assert blessing.get_int_custom_property("blessed") == 0
    assert os.listdir(blessing.uri) == ["INFRA_NOT_BLESSED"]


def test_a_missing_server_binary_fails_the_gate_not_the_step(trained, tmp_path):
    model, examples = trained
    runner = infra_gate.ProcessRunner(
        os.path.join(str(tmp_path), "eurosat", "1"), contract.MODEL_NAME, "no-such-tensorflow_model_server")
    from tfx.components.infra_validator import error_types

    with pytest.raises(error_types.JobAborted, match="needs the tensorflow_model_server binary"):
        runner.Start()


def test_kubeflow_v2_pods_get_the_environment_tfx_kubernetes_runner_reads(tmp_path):
    namespace = tmp_path / "namespace"
    namespace.write_text("kubeflow-user\n")
    environ = {"HOSTNAME": "eurosat-abc-123", "KFP_POD_NAME": "eurosat-abc-123"}
    infra_gate.set_kfp_v2_environment(environ, str(namespace))
    assert environ["KFP_NAMESPACE"] == "kubeflow-user" and environ["KFP_POD_NAME"] == "eurosat-abc-123"
    with pytest.raises(RuntimeError, match="must run in a Kubeflow Pipelines pod .* on Vertex AI use --infra-gate process"):
        infra_gate.set_kfp_v2_environment({}, str(tmp_path / "missing"))


def test_the_official_server_version_is_one_everywhere():
    with open(os.path.join(REPO, "Dockerfile")) as f:
        dockerfile = f.read()
    assert f"ARG TF_SERVING_VERSION={contract.TF_SERVING_VERSION}\n" in dockerfile
    assert "COPY --from=tf-serving /usr/bin/tensorflow_model_server" in dockerfile
    with open(os.path.join(REPO, "serving", "kubernetes.yaml")) as f:
        assert f"image: tensorflow/serving:{contract.TF_SERVING_VERSION} " in f.read()
    with open(os.path.join(REPO, "serving", "docker-compose.yml")) as f:
        assert f"image: tensorflow/serving:${{TF_SERVING_TAG:-{contract.TF_SERVING_VERSION}}}" in f.read()
    from importlib import metadata

    assert metadata.version("tensorflow-serving-api") == contract.TF_SERVING_VERSION


def test_an_unknown_runner_is_refused_in_one_line():
    with pytest.raises(ValueError, match="infra gate runner 'docker' is not one of kubernetes, process"):
        infra_gate.InfraGate(model=types.Channel(type=standard_artifacts.Model),
                             examples=types.Channel(type=standard_artifacts.Examples),
                             model_name=contract.MODEL_NAME, runner="docker")
